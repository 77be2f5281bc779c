"""Numbers published in seed document 000 (1-4-2-1 ReLU/sigmoid/linear net, half SE), in document order."""

from jaxbp.worked._records import Published

_CARRIED_K1 = (
    "carried from the wrong dLoss/dk1_out = -0.50474 and the sigmoid derivative rounded to 0.00249"
)
_CARRIED_K2 = "carried from the wrong dLoss/dk2_out = -0.25130"
_HL1_GRAD = (
    "carried from the wrong dLoss/dj_out of the hidden layer 1 chain rule (sums dLoss/dk_out, "
    "the sigmoid derivatives and dk_in/dw_jk over k separately and multiplies the sums)"
)
_B1_UPDATE = (
    "SGD update omits the learning rate (b - dLoss/db instead of b - 0.25 * dLoss/db), and the "
    "gradient is " + _HL1_GRAD
)

PUBLISHED: tuple[Published, ...] = (
    # Forward pass, input to hidden layer 1.
    Published("000", "forward, hidden layer 1", "input x w_ij1", "xw1[0, 0]", "0.5"),
    Published("000", "forward, hidden layer 1", "input x w_ij2", "xw1[0, 1]", "1.0"),
    Published("000", "forward, hidden layer 1", "input x w_ij3", "xw1[0, 2]", "1.5"),
    Published("000", "forward, hidden layer 1", "input x w_ij4", "xw1[0, 3]", "2.0"),
    Published("000", "forward, hidden layer 1", "j1_in", "z1[0, 0]", "1.5"),
    Published("000", "forward, hidden layer 1", "j2_in", "z1[0, 1]", "2.0"),
    Published("000", "forward, hidden layer 1", "j3_in", "z1[0, 2]", "2.5"),
    Published("000", "forward, hidden layer 1", "j4_in", "z1[0, 3]", "3.0"),
    Published("000", "forward, hidden layer 1", "ReLU(j1_in)", "a1[0, 0]", "1.5"),
    Published("000", "forward, hidden layer 1", "ReLU(j2_in)", "a1[0, 1]", "2.0"),
    Published("000", "forward, hidden layer 1", "ReLU(j3_in)", "a1[0, 2]", "2.5"),
    Published("000", "forward, hidden layer 1", "ReLU(j4_in)", "a1[0, 3]", "3.0"),
    # Forward pass, hidden layer 1 to hidden layer 2.
    Published("000", "forward, hidden layer 2", "j_out x W_jk1", "xw2[0, 0]", "5.0"),
    Published("000", "forward, hidden layer 2", "j_out x W_jk2", "xw2[0, 1]", "4.0"),
    Published("000", "forward, hidden layer 2", "k1_in", "z2[0, 0]", "6.0"),
    Published("000", "forward, hidden layer 2", "k2_in", "z2[0, 1]", "5.0"),
    Published("000", "forward, hidden layer 2", "Sigmoid(k1_in)", "a2[0, 0]", "0.9975"),
    Published("000", "forward, hidden layer 2", "Sigmoid(k2_in)", "a2[0, 1]", "0.9933"),
    # Forward pass, hidden layer 2 to output.
    Published("000", "forward, output layer", "k_out x W_ko", "xw3[0, 0]", "1.494"),
    Published("000", "forward, output layer", "o_in", "z3[0, 0]", "2.494"),
    Published("000", "forward, output layer", "o_out", "a3[0, 0]", "2.494"),
    # Loss.
    Published("000", "loss", "o_out - output", "a3[0, 0] - y[0, 0]", "-0.506"),
    Published(
        "000",
        "loss",
        "(o_out - output)^2",
        "(a3[0, 0] - y[0, 0]) ** 2",
        "0.506",
        erratum="arithmetic: (-0.506)^2 = 0.256, not 0.506 (the final Loss = 0.128 is nevertheless right)",
        correct="0.256",
    ),
    Published("000", "loss", "Loss", "loss", "0.128"),
    # Backward pass, output to hidden layer 2.
    Published("000", "backward, output layer", "dLoss/do_out", "dL_da3[0, 0]", "-0.506"),
    Published("000", "backward, output layer", "do_out/do_in", "da_dz3[0, 0]", "1"),
    Published("000", "backward, output layer", "do_in/dw_k1o", "a2[0, 0]", "0.9975"),
    Published("000", "backward, output layer", "do_in/dw_k2o", "a2[0, 1]", "0.9933"),
    Published("000", "backward, output layer", "do_in/db_o", "1.0", "1.0"),
    Published(
        "000",
        "backward, output layer",
        "dLoss/dw_k1o",
        "dW3[0, 0]",
        "-0.50474",
        erratum=(
            "rounding: computed as -0.506 x 0.9975 from values rounded to 3 and 4 decimals; "
            "exact (o_out - output) * k1_out = -0.505819 * 0.997527 = -0.504568"
        ),
        correct="-0.50457",
    ),
    Published(
        "000",
        "backward, output layer",
        "dLoss/dw_k2o",
        "dW3[1, 0]",
        "-0.50261",
        erratum=(
            "rounding: computed as -0.506 x 0.9933 from values rounded to 3 and 4 decimals; "
            "exact (o_out - output) * k2_out = -0.505819 * 0.993307 = -0.502434"
        ),
        correct="-0.50243",
    ),
    Published(
        "000",
        "backward, output layer",
        "do_in/db_o (as used in dLoss/db_o)",
        "1.0",
        "0.9975",
        erratum=(
            "chain rule: dLoss/db_o is written as -0.506 x 1 x 0.9975, multiplying by k1_out "
            "instead of do_in/db_o = 1 (the printed result -0.506 is nevertheless right)"
        ),
        correct="1.0000",
    ),
    Published("000", "backward, output layer", "dLoss/db_o", "db3[0]", "-0.506"),
    # SGD update, output layer.
    Published("000", "SGD update, output layer", "w'_k1o", "W3_new[0, 0]", "1.1262"),
    Published("000", "SGD update, output layer", "w'_k2o", "W3_new[1, 0]", "0.6256"),
    Published("000", "SGD update, output layer", "b'_o", "b3_new[0]", "1.1265"),
    # Backward pass, hidden layer 2 to hidden layer 1.
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/do_out (in dLoss/dk_out)",
        "dL_da3[0, 0]",
        "0.506",
        erratum="sign dropped: restates dLoss/do_out = -0.506 as 0.506 in the formulas for dLoss/dk1_out and dLoss/dk2_out",
        correct="-0.506",
    ),
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/dk1_out",
        "dL_da2[0, 0]",
        "-0.50474",
        erratum=(
            "chain rule: multiplies by do_in/dw_k1o = k1_out = 0.9975 on top of w_k1o (i.e. takes "
            "dLoss/dw_k1o x w_k1o); correct is dLoss/do_out x do_out/do_in x w_k1o = -0.505819 x 1.0"
        ),
        correct="-0.50582",
    ),
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/dk2_out",
        "dL_da2[0, 1]",
        "-0.25130",
        erratum=(
            "chain rule: multiplies by an extra factor k2_out = 0.9933 (the formula even shows 0.9975), "
            "i.e. takes dLoss/dw_k2o x w_k2o = -0.50261 x 0.5; correct is dLoss/do_out x w_k2o "
            "= -0.505819 x 0.5"
        ),
        correct="-0.25291",
    ),
    Published(
        "000",
        "backward, hidden layer 2",
        "dk1_out/dk1_in",
        "da_dz2[0, 0]",
        "0.00249",
        erratum=(
            "rounding: computed as 0.9975 x (1 - 0.9975) from the sigmoid rounded to 4 decimals; "
            "exact sigma(6)(1 - sigma(6)) = 0.0024665"
        ),
        correct="0.00247",
    ),
    Published("000", "backward, hidden layer 2", "dk2_out/dk2_in", "da_dz2[0, 1]", "0.00665"),
    Published("000", "backward, hidden layer 2", "dk1_in/dw_j1k1", "a1[0, 0]", "1.5"),
    Published("000", "backward, hidden layer 2", "dk1_in/dw_j2k1", "a1[0, 1]", "2.0"),
    Published("000", "backward, hidden layer 2", "dk1_in/dw_j3k1", "a1[0, 2]", "2.5"),
    Published("000", "backward, hidden layer 2", "dk1_in/dw_j4k1", "a1[0, 3]", "3.0"),
    Published("000", "backward, hidden layer 2", "dk2_in/dw_j1k2", "a1[0, 0]", "1.5"),
    Published("000", "backward, hidden layer 2", "dk2_in/dw_j2k2", "a1[0, 1]", "2.0"),
    Published("000", "backward, hidden layer 2", "dk2_in/dw_j3k2", "a1[0, 2]", "2.5"),
    Published("000", "backward, hidden layer 2", "dk2_in/dw_j4k2", "a1[0, 3]", "3.0"),
    Published("000", "backward, hidden layer 2", "dLoss/dw_j1k1", "dW2[0, 0]", "-0.00188"),
    Published("000", "backward, hidden layer 2", "dLoss/dw_j1k2", "dW2[0, 1]", "-0.00252"),
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/dw_j2k1",
        "dW2[1, 0]",
        "-0.00251",
        erratum=_CARRIED_K1 + " (-0.50474 x 0.00249 x 2.0); exact -0.0024952",
        correct="-0.00250",
    ),
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/dw_j2k2",
        "dW2[1, 1]",
        "-0.00334",
        erratum=_CARRIED_K2 + " (-0.25130 x 0.00665 x 2.0); exact -0.0033627",
        correct="-0.00336",
    ),
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/dw_j3k1",
        "dW2[2, 0]",
        "-0.00314",
        erratum=_CARRIED_K1 + " (-0.50474 x 0.00249 x 2.5); exact -0.0031190",
        correct="-0.00312",
    ),
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/dw_j3k2",
        "dW2[2, 1]",
        "-0.00417",
        erratum=_CARRIED_K2 + " (-0.25130 x 0.00665 x 2.5); exact -0.0042034",
        correct="-0.00420",
    ),
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/dw_j4k1",
        "dW2[3, 0]",
        "-0.00377",
        erratum=_CARRIED_K1 + " (-0.50474 x 0.00249 x 3.0); exact -0.0037428",
        correct="-0.00374",
    ),
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/dw_j4k2",
        "dW2[3, 1]",
        "-0.00501",
        erratum=_CARRIED_K2 + " (-0.25130 x 0.00665 x 3.0); exact -0.0050441",
        correct="-0.00504",
    ),
    Published("000", "backward, hidden layer 2", "dLoss/db_jk1", "db2[0]", "-0.00125"),
    Published(
        "000",
        "backward, hidden layer 2",
        "dLoss/db_jk2",
        "db2[1]",
        "-0.00167",
        erratum=_CARRIED_K2 + " (-0.25130 x 0.00665); exact -0.0016814",
        correct="-0.00168",
    ),
    # SGD update, hidden layer 2.
    Published("000", "SGD update, hidden layer 2", "w'_j1k1", "W2_new[0, 0]", "1.00047"),
    Published(
        "000",
        "SGD update, hidden layer 2",
        "w'_j1k2",
        "W2_new[0, 1]",
        "0.00062",
        erratum="arithmetic: 0 - 0.25 x (-0.00252) = 0.00063, not 0.00062; exact 0.00063051",
        correct="0.00063",
    ),
    Published("000", "SGD update, hidden layer 2", "w'_j2k1", "W2_new[1, 0]", "0.75062"),
    Published(
        "000",
        "SGD update, hidden layer 2",
        "w'_j2k2",
        "W2_new[1, 1]",
        "0.25083",
        erratum="carried from the wrong dLoss/dw_j2k2 = -0.00334 (itself "
        + _CARRIED_K2
        + "); exact 0.2508407",
        correct="0.25084",
    ),
    Published("000", "SGD update, hidden layer 2", "w'_j3k1", "W2_new[2, 0]", "0.50078"),
    Published(
        "000",
        "SGD update, hidden layer 2",
        "w'_j3k2",
        "W2_new[2, 1]",
        "0.50104",
        erratum="carried from the wrong dLoss/dw_j3k2 = -0.00417 (itself "
        + _CARRIED_K2
        + "); exact 0.5010508",
        correct="0.50105",
    ),
    Published("000", "SGD update, hidden layer 2", "w'_j4k1", "W2_new[3, 0]", "0.25094"),
    Published(
        "000",
        "SGD update, hidden layer 2",
        "w'_j4k2",
        "W2_new[3, 1]",
        "0.75125",
        erratum="carried from the wrong dLoss/dw_j4k2 = -0.00501 (itself "
        + _CARRIED_K2
        + "); exact 0.7512610",
        correct="0.75126",
    ),
    Published("000", "SGD update, hidden layer 2", "b'_jk1", "b2_new[0]", "1.00031"),
    Published("000", "SGD update, hidden layer 2", "b'_jk2", "b2_new[1]", "1.00042"),
    # Backward pass, hidden layer 1 to input layer (the document's own summed chain rule).
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/dk_out = dLoss/dk1_out + dLoss/dk2_out",
        "dL_da2[0, 0] + dL_da2[0, 1]",
        "-0.75604",
        erratum="carried from the wrong dLoss/dk1_out = -0.50474 and dLoss/dk2_out = -0.25130; exact sum -0.758729",
        correct="-0.75873",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dk_out/dk_in = dk1_out/dk1_in + dk2_out/dk2_in",
        "da_dz2[0, 0] + da_dz2[0, 1]",
        "0.00914",
        erratum="carried from dk1_out/dk1_in rounded to 0.00249 (exact 0.0024665); exact sum 0.0091146",
        correct="0.00911",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dk_in/dw_j1k = dk1_in/dw_j1k1 + dk2_in/dw_j1k2",
        "a1[0, 0] + a1[0, 0]",
        "3.0",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dw_j1k/dj1_out = w_j1k1 + w_j1k2",
        "W2[0, 0] + W2[0, 1]",
        "1.0",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/dj1_out",
        "dL_da1[0, 0]",
        "-0.02073",
        erratum=(
            "chain rule for hidden layer 1: sums dLoss/dk_out, the sigmoid derivatives and dk_in/dw_j1k "
            "over k separately and multiplies the sums (-0.75604 x 0.00914 x 3.0 x 1.0, with the spurious "
            "factor dk_in/dw_j1k = 2 j1_out); correct is sum_k dLoss/dk_kout * sigma'(k_kin) * w_j1k "
            "= -0.0012476"
        ),
        correct="-0.00125",
    ),
    Published("000", "backward, hidden layer 1", "dj1_out/dj1_in", "da_dz1[0, 0]", "1"),
    Published("000", "backward, hidden layer 1", "dj1_in/dw_ij1", "x[0, 0]", "2.0"),
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/dw_ij1",
        "dW1[0, 0]",
        "-0.04146",
        erratum=_HL1_GRAD + " (-0.02073 x 1 x 2.0); exact -0.0024952",
        correct="-0.00250",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/dw_ij2",
        "dW1[0, 1]",
        "-0.05528",
        erratum=_HL1_GRAD + " (dLoss/dj2_out = -0.02764, times 2.0); exact -0.0027121",
        correct="-0.00271",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/dw_ij3",
        "dW1[0, 2]",
        "-0.06910",
        erratum=_HL1_GRAD + " (dLoss/dj3_out = -0.03455, times 2.0); exact -0.0029290",
        correct="-0.00293",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/dw_ij4",
        "dW1[0, 3]",
        "-0.08292",
        erratum=_HL1_GRAD + " (dLoss/dj4_out = -0.04146, times 2.0); exact -0.0031458",
        correct="-0.00315",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/db_ij1",
        "db1[0]",
        "-0.02073",
        erratum=_HL1_GRAD + "; exact -0.0012476",
        correct="-0.00125",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/db_ij2",
        "db1[1]",
        "-0.02764",
        erratum=_HL1_GRAD + " (-0.75604 x 0.00914 x 4.0 x 1.0); exact -0.0013560",
        correct="-0.00136",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/db_ij3",
        "db1[2]",
        "-0.03455",
        erratum=_HL1_GRAD + " (-0.75604 x 0.00914 x 5.0 x 1.0); exact -0.0014645",
        correct="-0.00146",
    ),
    Published(
        "000",
        "backward, hidden layer 1",
        "dLoss/db_ij4",
        "db1[3]",
        "-0.04146",
        erratum=_HL1_GRAD + " (-0.75604 x 0.00914 x 6.0 x 1.0); exact -0.0015729",
        correct="-0.00157",
    ),
    # SGD update, hidden layer 1.
    Published(
        "000",
        "SGD update, hidden layer 1",
        "w'_ij1",
        "W1_new[0, 0]",
        "0.26037",
        erratum="carried from the wrong dLoss/dw_ij1 = -0.04146, itself "
        + _HL1_GRAD
        + "; exact 0.2506238",
        correct="0.25062",
    ),
    Published(
        "000",
        "SGD update, hidden layer 1",
        "w'_ij2",
        "W1_new[0, 1]",
        "0.51382",
        erratum="carried from the wrong dLoss/dw_ij2 = -0.05528, itself "
        + _HL1_GRAD
        + "; exact 0.5006780",
        correct="0.50068",
    ),
    Published(
        "000",
        "SGD update, hidden layer 1",
        "w'_ij3",
        "W1_new[0, 2]",
        "0.76728",
        erratum="carried from the wrong dLoss/dw_ij3 = -0.06910, itself "
        + _HL1_GRAD
        + "; exact 0.7507322",
        correct="0.75073",
    ),
    Published(
        "000",
        "SGD update, hidden layer 1",
        "w'_ij4",
        "W1_new[0, 3]",
        "1.02073",
        erratum="carried from the wrong dLoss/dw_ij4 = -0.08292, itself "
        + _HL1_GRAD
        + "; exact 1.0007865",
        correct="1.00079",
    ),
    Published(
        "000",
        "SGD update, hidden layer 1",
        "b'_ij1",
        "b1_new[0]",
        "1.02073",
        erratum=_B1_UPDATE + " (1 + 0.02073); exact 1.0003119",
        correct="1.00031",
    ),
    Published(
        "000",
        "SGD update, hidden layer 1",
        "b'_ij2",
        "b1_new[1]",
        "1.02764",
        erratum=_B1_UPDATE + " (1 + 0.02764); exact 1.0003390",
        correct="1.00034",
    ),
    Published(
        "000",
        "SGD update, hidden layer 1",
        "b'_ij3",
        "b1_new[2]",
        "1.03455",
        erratum=_B1_UPDATE + " (1 + 0.03455); exact 1.0003661",
        correct="1.00037",
    ),
    Published(
        "000",
        "SGD update, hidden layer 1",
        "b'_ij4",
        "b1_new[3]",
        "1.04146",
        erratum=_B1_UPDATE + " (1 + 0.04146); exact 1.0003932",
        correct="1.00039",
    ),
    # Old vs new parameters: the summary restates the new parameters; only the changed value is recorded.
    Published(
        "000",
        "summary of new parameters",
        "b'_ij2",
        "b1_new[1]",
        "1.02674",
        erratum=(
            "typo: restates 1.02764 as 1.02674; 1.02764 is itself wrong (learning rate omitted in the bias "
            "update, gradient from the wrong hidden layer 1 chain rule); exact 1.0003390"
        ),
        correct="1.00034",
    ),
)
