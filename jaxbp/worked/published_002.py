"""Numbers published in seed document 002 (Indonesian 1-4-2-1 ReLU/sigmoid/linear example), in document order."""

from jaxbp.worked._records import Published

_K_OUT_WRONG = (
    "chain rule: dLoss/dk_out is taken as dLoss/dOout * dOout/dOin * dOin/dwko * wko, i.e. with an "
    "extra factor k_out; correct is dLoss/dOout * wko"
)
_W2_GRAD = (
    "carried from the backward pass of hidden layer 2: uses dLoss/dwk1o = -0.50474 in place of "
    "dLoss/dk1out = -0.50582 and the sigmoid derivative 0.00249 in place of 0.0024665 (exact "
    "dLoss/dbk1 = -0.0012476, times j_out)"
)
_HIDDEN1 = (
    "chain rule for hidden layer 1: the document sums dLoss/dk_out over k (-0.75604, itself wrong), "
    "sums the sigmoid derivatives (0.00914), sums dk_in/dw (2*j_out) and sums w_jk before "
    "multiplying; correct is sum_k dLoss/dk_k_out * sigma'(k_k_in) * w_jk"
)

PUBLISHED: tuple[Published, ...] = (
    # Forward pass, hidden layer 2 (the forward pass of hidden layer 1 is only in images).
    Published("002", "forward, hidden layer 2", "-k1in (exponent in e^-6)", "-z2[0, 0]", "-6"),
    Published("002", "forward, hidden layer 2", "-k2in (exponent in e^-5)", "-z2[0, 1]", "-5"),
    Published("002", "forward, hidden layer 2", "k1out", "a2[0, 0]", "0.9975"),
    Published("002", "forward, hidden layer 2", "k2out", "a2[0, 1]", "0.9933"),
    # Loss.
    Published("002", "loss", "Oout", "a3[0, 0]", "2.494"),
    Published("002", "loss", "Oout - output", "a3[0, 0] - y[0, 0]", "-0.506"),
    Published("002", "loss", "(Oout - output)^2", "(a3[0, 0] - y[0, 0]) ** 2", "0.256"),
    Published("002", "loss", "Loss", "loss", "0.128"),
    # Backward pass, output layer.
    Published("002", "backward, output layer", "dLoss/dOout", "dL_da3[0, 0]", "-0.506"),
    Published("002", "backward, output layer", "dOout/dOin", "da_dz3[0, 0]", "1"),
    Published(
        "002",
        "backward, output layer",
        "dLoss/dwk1o",
        "dW3[0, 0]",
        "-0.50474",
        erratum="rounding: computed as -0.506 x 0.9975 from rounded factors; exact "
        "-0.505819 x 0.997527 = -0.504568",
        correct="-0.50457",
    ),
    Published(
        "002",
        "backward, output layer",
        "dLoss/dwk2o",
        "dW3[1, 0]",
        "-0.50261",
        erratum="rounding: computed as -0.506 x 0.9933 from rounded factors; exact "
        "-0.505819 x 0.993307 = -0.502434",
        correct="-0.50243",
    ),
    Published("002", "backward, output layer", "dLoss/dbo", "db3[0]", "-0.506"),
    # SGD update, output layer.
    Published("002", "SGD update, output layer", "w'k1o", "W3_new[0, 0]", "1.1262"),
    Published("002", "SGD update, output layer", "w'k2o", "W3_new[1, 0]", "0.6256"),
    Published("002", "SGD update, output layer", "b'o", "b3_new[0]", "1.1265"),
    # Backward pass, hidden layer 2.
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dk1out",
        "dL_da2[0, 0]",
        "-0.504",
        erratum=_K_OUT_WRONG + ": -0.506 x 1 x 1.0 = -0.506, not -0.506 x 1 x 0.9975 x 1.0",
        correct="-0.506",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dk2out",
        "dL_da2[0, 1]",
        "-0.25130",
        erratum=_K_OUT_WRONG + ": -0.50582 x 0.5 = -0.25291, not -0.506 x 1 x 0.9933 x 0.5",
        correct="-0.25291",
    ),
    Published("002", "backward, hidden layer 2", "1/(1+e^-6)", "a2[0, 0]", "0.99752737684"),
    Published(
        "002",
        "backward, hidden layer 2",
        "dk1out/dk1in",
        "da_dz2[0, 0]",
        "0.00246650929",
    ),
    Published("002", "backward, hidden layer 2", "1/(1+e^-5)", "a2[0, 1]", "0.99330714907"),
    Published(
        "002",
        "backward, hidden layer 2",
        "dk2out/dk2in",
        "da_dz2[0, 1]",
        "0.00664805667",
    ),
    Published("002", "backward, hidden layer 2", "k1in", "z2[0, 0]", "6"),
    Published("002", "backward, hidden layer 2", "k2in", "z2[0, 1]", "5"),
    Published("002", "backward, hidden layer 2", "j1out", "a1[0, 0]", "1.5"),
    Published("002", "backward, hidden layer 2", "j2out", "a1[0, 1]", "2.0"),
    Published("002", "backward, hidden layer 2", "j3out", "a1[0, 2]", "2.5"),
    Published("002", "backward, hidden layer 2", "j4out", "a1[0, 3]", "3.0"),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dbk1",
        "db2[0]",
        "-0.0012568026",
        erratum="computed as -0.50474 x 0.00249: uses dLoss/dwk1o (-0.50474) in place of "
        "dLoss/dk1out (-0.505819) and the mis-copied sigmoid derivative 0.00249 in place of "
        "0.0024665; exact -0.505819 x 0.0024665 = -0.0012476",
        correct="-0.0012476074",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dk1out (used in dLoss/dwj1k1)",
        "dL_da2[0, 0]",
        "-0.50474",
        erratum="uses dLoss/dwk1o (-0.50474, itself mis-rounded) as dLoss/dk1out; correct is "
        "dLoss/dOout * wk1o = -0.505819 x 1.0",
        correct="-0.50582",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dk1out/dk1in",
        "da_dz2[0, 0]",
        "0.00249",
        erratum="typo: restates the sigmoid derivative 0.00246650929 as 0.00249 (rounds to 0.00247)",
        correct="0.00247",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dwj1k1",
        "dW2[0, 0]",
        "-0.0018852039",
        erratum=_W2_GRAD + ": -0.0012476 x 1.5 = -0.0018714",
        correct="-0.0018714111",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dwj2k1",
        "dW2[1, 0]",
        "-0.0025136052",
        erratum=_W2_GRAD + ": -0.0012476 x 2.0 = -0.0024952",
        correct="-0.0024952148",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dwj3k1",
        "dW2[2, 0]",
        "-0.0031420065",
        erratum=_W2_GRAD + ": -0.0012476 x 2.5 = -0.0031190",
        correct="-0.0031190185",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dwj4k1",
        "dW2[3, 0]",
        "-0.0037704078",
        erratum=_W2_GRAD + ": -0.0012476 x 3.0 = -0.0037428",
        correct="-0.0037428221",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dwj1k1 (in text)",
        "dW2[0, 0]",
        "-0.00188",
    ),
    Published("002", "backward, hidden layer 2", "dLoss/dwj1k2", "dW2[0, 1]", "-0.00252"),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dwj2k2",
        "dW2[1, 1]",
        "-0.00334",
        erratum="carried from the wrong dLoss/dk2out (-0.25130, extra factor k2out): "
        "-0.25130 x 0.00665 x 2.0; exact -0.252910 x 0.0066481 x 2.0 = -0.0033627",
        correct="-0.00336",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dwj3k2",
        "dW2[2, 1]",
        "-0.00417",
        erratum="carried from the wrong dLoss/dk2out (-0.25130, extra factor k2out): "
        "-0.25130 x 0.00665 x 2.5; exact -0.252910 x 0.0066481 x 2.5 = -0.0042034",
        correct="-0.00420",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dwj4k2",
        "dW2[3, 1]",
        "-0.00501",
        erratum="carried from the wrong dLoss/dk2out (-0.25130, extra factor k2out): "
        "-0.25130 x 0.00665 x 3.0; exact -0.252910 x 0.0066481 x 3.0 = -0.0050441",
        correct="-0.00504",
    ),
    Published(
        "002",
        "backward, hidden layer 2",
        "dLoss/dbk2",
        "db2[1]",
        "-0.00167",
        erratum="carried from the wrong dLoss/dk2out (-0.25130, extra factor k2out): "
        "-0.25130 x 0.00665; exact -0.252910 x 0.0066481 = -0.0016814",
        correct="-0.00168",
    ),
    # SGD update, hidden layer 2 (weights wjk and biases bk).
    Published("002", "SGD update, hidden layer 2", "w'j1k1", "W2_new[0, 0]", "1.00047"),
    Published(
        "002",
        "SGD update, hidden layer 2",
        "w'j1k2",
        "W2_new[0, 1]",
        "0.00062",
        erratum="arithmetic/rounding: 0 - 0.25 x (-0.0025220) = 0.00063051 rounds to 0.00063 "
        "(the document's own -0.00252 also gives 0.00063)",
        correct="0.00063",
    ),
    Published("002", "SGD update, hidden layer 2", "w'j2k1", "W2_new[1, 0]", "0.75062"),
    Published(
        "002",
        "SGD update, hidden layer 2",
        "w'j2k2",
        "W2_new[1, 1]",
        "0.25083",
        erratum="carried from the wrong dLoss/dwj2k2 (-0.00334, from dLoss/dk2out = -0.25130) "
        "and truncated; exact 0.25 - 0.25 x (-0.0033627) = 0.2508407",
        correct="0.25084",
    ),
    Published("002", "SGD update, hidden layer 2", "w'j3k1", "W2_new[2, 0]", "0.50078"),
    Published(
        "002",
        "SGD update, hidden layer 2",
        "w'j3k2",
        "W2_new[2, 1]",
        "0.50104",
        erratum="carried from the wrong dLoss/dwj3k2 (-0.00417, from dLoss/dk2out = -0.25130); "
        "exact 0.5 - 0.25 x (-0.0042034) = 0.5010508",
        correct="0.50105",
    ),
    Published("002", "SGD update, hidden layer 2", "w'j4k1", "W2_new[3, 0]", "0.25094"),
    Published(
        "002",
        "SGD update, hidden layer 2",
        "w'j4k2",
        "W2_new[3, 1]",
        "0.75125",
        erratum="carried from the wrong dLoss/dwj4k2 (-0.00501, from dLoss/dk2out = -0.25130); "
        "exact 0.75 - 0.25 x (-0.0050441) = 0.7512610",
        correct="0.75126",
    ),
    Published("002", "SGD update, hidden layer 2", "b'k1", "b2_new[0]", "1.00031"),
    Published("002", "SGD update, hidden layer 2", "b'k2", "b2_new[1]", "1.00042"),
    # Backward pass, hidden layer 1 (the document sums over k before multiplying).
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dkout = dLoss/dk1out + dLoss/dk2out",
        "dL_da2[0, 0] + dL_da2[0, 1]",
        "-0.75604",
        erratum="carried from the wrong dLoss/dk1out (-0.50474) and dLoss/dk2out (-0.25130); "
        "exact -0.505819 + -0.252910 = -0.758729",
        correct="-0.75873",
    ),
    Published("002", "backward, hidden layer 1", "dk2out/dk2in", "da_dz2[0, 1]", "0.00665"),
    Published(
        "002",
        "backward, hidden layer 1",
        "dkout/dkin = dk1out/dk1in + dk2out/dk2in",
        "da_dz2[0, 0] + da_dz2[0, 1]",
        "0.00914",
        erratum="carried from the mis-copied sigmoid derivative 0.00249 (should be 0.0024665); "
        "exact 0.0024665 + 0.0066481 = 0.0091146",
        correct="0.00911",
    ),
    Published("002", "backward, hidden layer 1", "dkin/dwj1k", "a1[0, 0] + a1[0, 0]", "3.0"),
    Published("002", "backward, hidden layer 1", "dkin/dwj2k", "a1[0, 1] + a1[0, 1]", "4.0"),
    Published("002", "backward, hidden layer 1", "dkin/dwj3k", "a1[0, 2] + a1[0, 2]", "5.0"),
    Published("002", "backward, hidden layer 1", "dkin/dwj4k", "a1[0, 3] + a1[0, 3]", "6.0"),
    Published("002", "backward, hidden layer 1", "wj1k1 + wj1k2", "W2[0, 0] + W2[0, 1]", "1.0"),
    Published("002", "backward, hidden layer 1", "wj2k1 + wj2k2", "W2[1, 0] + W2[1, 1]", "1.0"),
    Published("002", "backward, hidden layer 1", "wj3k1 + wj3k2", "W2[2, 0] + W2[2, 1]", "1.0"),
    Published("002", "backward, hidden layer 1", "wj4k1 + wj4k2", "W2[3, 0] + W2[3, 1]", "1.0"),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dwj1out (dLoss/dj1out)",
        "dL_da1[0, 0]",
        "-0.02073",
        erratum=_HIDDEN1 + ": -0.50582 x 0.0024665 x 1.0 + -0.25291 x 0.0066481 x 0 = -0.0012476",
        correct="-0.00125",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dj2out",
        "dL_da1[0, 1]",
        "-0.0276408224",
        erratum=_HIDDEN1 + ": -0.50582 x 0.0024665 x 0.75 + -0.25291 x 0.0066481 x 0.25 "
        "= -0.0013560",
        correct="-0.0013560447",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dj3out",
        "dL_da1[0, 2]",
        "-0.02073",
        erratum="typo: repeats -0.02073 (its own product -0.75604 x 0.00914 x 5.0 is -0.03455); "
        "moreover " + _HIDDEN1 + ": -0.50582 x 0.0024665 x 0.5 + -0.25291 x 0.0066481 x 0.5 "
        "= -0.0014645",
        correct="-0.00146",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dj4out",
        "dL_da1[0, 3]",
        "-0.02073",
        erratum="typo: repeats -0.02073 (its own product -0.75604 x 0.00914 x 6.0 is -0.04146); "
        "moreover " + _HIDDEN1 + ": -0.50582 x 0.0024665 x 0.25 + -0.25291 x 0.0066481 x 0.75 "
        "= -0.0015729",
        correct="-0.00157",
    ),
    Published("002", "backward, hidden layer 1", "j1in", "z1[0, 0]", "1.5"),
    Published("002", "backward, hidden layer 1", "dj1out/dj1in", "da_dz1[0, 0]", "1"),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dwij1",
        "dW1[0, 0]",
        "-0.04146",
        erratum="carried from the wrong dLoss/dj1out (-0.02073, hidden-layer-1 chain rule); "
        "exact -0.0012476 x 2 = -0.0024952",
        correct="-0.00250",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dwij2",
        "dW1[0, 1]",
        "-0.0552816448",
        erratum="carried from the wrong dLoss/dj2out (-0.0276408224, hidden-layer-1 chain rule); "
        "exact -0.0013560 x 2 = -0.0027121",
        correct="-0.0027120895",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dwij2",
        "dW1[0, 1]",
        "-0.05528",
        erratum="carried from the wrong dLoss/dj2out (-0.0276408224, hidden-layer-1 chain rule); "
        "exact -0.0013560 x 2 = -0.0027121",
        correct="-0.00271",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dwij3",
        "dW1[0, 2]",
        "-0.06910",
        erratum="carried from the wrong hidden-layer-1 chain rule (2 x -0.03455); "
        "exact -0.0014645 x 2 = -0.0029290",
        correct="-0.00293",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dwij4",
        "dW1[0, 3]",
        "-0.08292",
        erratum="carried from the wrong hidden-layer-1 chain rule (2 x -0.04146); "
        "exact -0.0015729 x 2 = -0.0031458",
        correct="-0.00315",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dbij1",
        "db1[0]",
        "-0.02073",
        erratum="carried from the wrong dLoss/dj1out (hidden-layer-1 chain rule); exact -0.0012476",
        correct="-0.00125",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dbij2",
        "db1[1]",
        "-0.02764",
        erratum="carried from the wrong dLoss/dj2out (hidden-layer-1 chain rule); exact -0.0013560",
        correct="-0.00136",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dbij3",
        "db1[2]",
        "-0.03455",
        erratum="carried from the wrong hidden-layer-1 chain rule (-0.75604 x 0.00914 x 5.0); "
        "exact -0.0014645",
        correct="-0.00146",
    ),
    Published(
        "002",
        "backward, hidden layer 1",
        "dLoss/dbij4",
        "db1[3]",
        "-0.04146",
        erratum="carried from the wrong hidden-layer-1 chain rule (-0.75604 x 0.00914 x 6.0); "
        "exact -0.0015729",
        correct="-0.00157",
    ),
    # SGD update, hidden layer 1 (weights wij and biases bij).
    Published(
        "002",
        "SGD update, hidden layer 1",
        "w'ij1",
        "W1_new[0, 0]",
        "0.2603",
        erratum="carried from the wrong dLoss/dwij1 (-0.04146) and truncated (its own "
        "0.25 + 0.25 x 0.04146 = 0.260365); exact 0.25 - 0.25 x (-0.0024952) = 0.2506238",
        correct="0.2506",
    ),
    Published(
        "002",
        "SGD update, hidden layer 1",
        "w'ij2",
        "W1_new[0, 1]",
        "0.51382",
        erratum="carried from the wrong dLoss/dwij2 (-0.05528); "
        "exact 0.5 - 0.25 x (-0.0027121) = 0.5006780",
        correct="0.50068",
    ),
    Published(
        "002",
        "SGD update, hidden layer 1",
        "w'ij3",
        "W1_new[0, 2]",
        "0.76728",
        erratum="carried from the wrong dLoss/dwij3 (-0.06910); "
        "exact 0.75 - 0.25 x (-0.0029290) = 0.7507322",
        correct="0.75073",
    ),
    Published(
        "002",
        "SGD update, hidden layer 1",
        "w'ij4",
        "W1_new[0, 3]",
        "1.02073",
        erratum="carried from the wrong dLoss/dwij4 (-0.08292); "
        "exact 1 - 0.25 x (-0.0031458) = 1.0007865",
        correct="1.00079",
    ),
    Published(
        "002",
        "SGD update, hidden layer 1",
        "b'ij1",
        "b1_new[0]",
        "1.02073",
        erratum="SGD step omits the learning rate (1 - (-0.02073)) and is carried from the wrong "
        "dLoss/dbij1; exact 1 - 0.25 x (-0.0012476) = 1.0003119",
        correct="1.00031",
    ),
    Published(
        "002",
        "SGD update, hidden layer 1",
        "b'ij2",
        "b1_new[1]",
        "1.02764",
        erratum="SGD step omits the learning rate (1 - (-0.02764)) and is carried from the wrong "
        "dLoss/dbij2; exact 1 - 0.25 x (-0.0013560) = 1.0003390",
        correct="1.00034",
    ),
    Published(
        "002",
        "SGD update, hidden layer 1",
        "b'ij3",
        "b1_new[2]",
        "1.03455",
        erratum="SGD step omits the learning rate (1 - (-0.03455)) and is carried from the wrong "
        "dLoss/dbij3; exact 1 - 0.25 x (-0.0014645) = 1.0003661",
        correct="1.00037",
    ),
    Published(
        "002",
        "SGD update, hidden layer 1",
        "b'ij4",
        "b1_new[3]",
        "1.04146",
        erratum="SGD step omits the learning rate (1 - (-0.04146)) and is carried from the wrong "
        "dLoss/dbij4; exact 1 - 0.25 x (-0.0015729) = 1.0003932",
        correct="1.00039",
    ),
)
