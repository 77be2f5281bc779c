"""Numbers published in seed document 003 (sigmoid-softmax 2-2-2, cross-entropy), in document order."""

from jaxbp.worked._records import Published

_LAYER2 = (
    "forward layer 2 uses W_ih transposed [[0.7, 0.5], [0.6, 0.4]] and b1 = [0.5, 0.6] instead of "
    "W_ho = [[0.4, 0.6], [0.9, 0.8]] and b2 = [0.7, 0.9]"
)
_CARRIED = "carried from the wrong o_in of the forward pass (" + _LAYER2 + ")"

PUBLISHED: tuple[Published, ...] = (
    Published("003", "forward, hidden layer", "h_in1", "z1[0, 0]", "0.67"),
    Published("003", "forward, hidden layer", "h_in2", "z1[0, 1]", "0.74"),
    Published("003", "forward, hidden layer", "h_out1", "a1[0, 0]", "0.6615"),
    Published("003", "forward, hidden layer", "h_out2", "a1[0, 1]", "0.6770"),
    Published(
        "003",
        "forward, output layer",
        "o_in1",
        "z2[0, 0]",
        "1.3693",
        erratum=_LAYER2 + "; correct is 0.6615*0.4 + 0.6770*0.9 + 0.7 = 1.5739",
        correct="1.5739",
    ),
    Published(
        "003",
        "forward, output layer",
        "o_in2",
        "z2[0, 1]",
        "1.0391",
        erratum=_LAYER2
        + ", and even with those 0.6615*0.5 + 0.6770*0.4 + 0.6 = 1.2016, not 1.0391; "
        "correct is 0.6615*0.6 + 0.6770*0.8 + 0.9 = 1.8385",
        correct="1.8385",
    ),
    Published(
        "003",
        "forward, output layer",
        "o_out1",
        "a2[0, 0]",
        "0.5818",
        erratum="softmax of the wrong o_in = [1.3693, 1.0391]; " + _CARRIED + "; correct 0.4342",
        correct="0.4342",
    ),
    Published(
        "003",
        "forward, output layer",
        "o_out2",
        "a2[0, 1]",
        "0.4182",
        erratum="softmax of the wrong o_in = [1.3693, 1.0391]; " + _CARRIED + "; correct 0.5658",
        correct="0.5658",
    ),
    Published(
        "003",
        "loss",
        "Crossentropy",
        "loss",
        "0.4704",
        erratum="loss formula adds a binary-cross-entropy term 1*log(1 - o_out2) (= log o_out1 again, "
        "doubling it) and uses log base 10 (-2*log10(0.5818) = 0.4704), on the wrong o_out1 = 0.5818 "
        "of the forward pass; the cross-entropy is -ln(o_out1) = -ln(0.4342) = 0.8342",
        correct="0.8342",
    ),
    Published(
        "003",
        "backward, output layer",
        "dE_total/do_out1",
        "dL_da2[0, 0]",
        "-1.719",
        erratum="-1/o_out1 with the wrong o_out1 = 0.5818 of the forward pass (" + _LAYER2 + "); "
        "correct -1/0.4342 = -2.303",
        correct="-2.303",
    ),
    Published(
        "003",
        "backward, output layer",
        "do_out1/do_in1",
        "da_dz2[0, 0, 0]",
        "0.2433",
        erratum="o_out1*(1 - o_out1) with the wrong o_out1 = 0.5818; "
        + _CARRIED
        + "; correct 0.2457",
        correct="0.2457",
    ),
    Published("003", "backward, output layer", "do_in1/dW_h2o1 = h_out2", "a1[0, 1]", "0.6770"),
    Published(
        "003",
        "backward, output layer",
        "dE_total/dW_h2o1",
        "dW2[1, 0]",
        "-0.2831",
        erratum="-1.719*0.2433*0.677 carries dE/do_out1 and do_out1/do_in1 from the wrong forward pass; "
        "correct (o_out1 - y1)*h_out2 = -0.5658*0.6770 = -0.3830",
        correct="-0.3830",
    ),
    Published(
        "003",
        "backward, output layer",
        "dE_total/do_out2",
        "dL_da2[0, 1]",
        "-2.3912",
        erratum="-1/o_out2 treats y2 as 1 (binary cross-entropy term), but y2 = 0 so the cross-entropy "
        "gives dE/do_out2 = -y2/o_out2 = 0; also uses the wrong o_out2 = 0.4182 of the forward pass",
        correct="0.0000",
    ),
    Published(
        "003",
        "backward, output layer",
        "do_out2/do_in2",
        "da_dz2[0, 1, 1]",
        "0.2433",
        erratum="o_out2*(1 - o_out2) with the wrong o_out2 = 0.4182; "
        + _CARRIED
        + "; correct 0.2457",
        correct="0.2457",
    ),
    Published(
        "003",
        "backward, output layer",
        "dE_total/dW_h1o1",
        "dW2[0, 0]",
        "-0.2767",
        erratum="-1.719*0.2433*0.6615 carries dE/do_out1 and do_out1/do_in1 from the wrong forward pass; "
        "correct (o_out1 - y1)*h_out1 = -0.5658*0.6615 = -0.3743",
        correct="-0.3743",
    ),
    Published(
        "003",
        "backward, output layer",
        "dE_total/dW_h1o2",
        "dW2[0, 1]",
        "-0.3733",
        erratum="chain rule drops the softmax cross term do_out1/do_in2 and uses the wrong "
        "dE/do_out2 = -1/o_out2 (y2 = 0), on the wrong forward pass; its own product "
        "-2.3912*0.2433*0.6615 = -0.3848, not -0.3733 (arithmetic); correct "
        "(o_out2 - y2)*h_out1 = 0.5658*0.6615 = 0.3743",
        correct="0.3743",
    ),
    Published(
        "003",
        "backward, output layer",
        "dE_total/dW_h2o2",
        "dW2[1, 1]",
        "-0.3853",
        erratum="chain rule drops the softmax cross term do_out1/do_in2 and uses the wrong "
        "dE/do_out2 = -1/o_out2 (y2 = 0), on the wrong forward pass; its own product "
        "-2.3912*0.2433*0.6770 = -0.3939, not -0.3853 (arithmetic); correct "
        "(o_out2 - y2)*h_out2 = 0.5658*0.6770 = 0.3830",
        correct="0.3830",
    ),
    Published(
        "003",
        "SGD update, output layer",
        "W*_h1o1",
        "W2_new[0, 0]",
        "0.4055",
        erratum="carried from the wrong gradient -0.2767; correct 0.4 - 0.02*(-0.3743) = 0.4075",
        correct="0.4075",
    ),
    Published(
        "003",
        "SGD update, output layer",
        "W*_h1o2",
        "W2_new[0, 1]",
        "0.6075",
        erratum="carried from the wrong gradient -0.3733; correct 0.6 - 0.02*0.3743 = 0.5925",
        correct="0.5925",
    ),
    Published(
        "003",
        "SGD update, output layer",
        "W*_h2o1",
        "W2_new[1, 0]",
        "0.9057",
        erratum="carried from the wrong gradient -0.2831; correct 0.9 - 0.02*(-0.3830) = 0.9077",
        correct="0.9077",
    ),
    Published(
        "003",
        "SGD update, output layer",
        "W*_h2o2",
        "W2_new[1, 1]",
        "0.8077",
        erratum="carried from the wrong gradient -0.3853; correct 0.8 - 0.02*0.3830 = 0.7923",
        correct="0.7923",
    ),
    Published("003", "backward, hidden layer", "dh_out1/dh_in1", "da_dz1[0, 0]", "0.2239"),
    Published(
        "003",
        "backward, hidden layer",
        "dE_total/dh_out1",
        "dL_da1[0, 0]",
        "-0.1673",
        erratum="chain rule follows only the o_in1 path (-1.719*0.2433*W_h1o1) and drops the path "
        "through o_in2 (softmax couples the outputs: dE/dh_out1 = sum_j (o_out_j - y_j)*W_h1oj), "
        "and carries the wrong forward pass; correct -0.5658*0.4 + 0.5658*0.6 = 0.1132",
        correct="0.1132",
    ),
    Published(
        "003",
        "backward, hidden layer",
        "dE_total/dW_i2h1",
        "dW1[1, 0]",
        "-0.0075",
        erratum="carried from the wrong dE/dh_out1 = -0.1673; correct 0.1132*0.2239*0.2 = 0.0051",
        correct="0.0051",
    ),
    Published(
        "003",
        "backward, hidden layer",
        "dE_total/dh_out2",
        "dL_da1[0, 1]",
        "-0.4654",
        erratum="chain rule follows only the o_in2 path (-2.3912*0.2433*W_h2o2) with the wrong "
        "dE/do_out2 = -1/o_out2 (y2 = 0) and drops the path through o_in1, on the wrong forward pass; "
        "correct sum_j (o_out_j - y_j)*W_h2oj = -0.5658*0.9 + 0.5658*0.8 = -0.0566",
        correct="-0.0566",
    ),
    Published("003", "backward, hidden layer", "dh_out2/dh_in2", "da_dz1[0, 1]", "0.2187"),
    Published(
        "003",
        "backward, hidden layer",
        "dE_total/dW_i1h1",
        "dW1[0, 0]",
        "-0.0037",
        erratum="carried from the wrong dE/dh_out1 = -0.1673; correct 0.1132*0.2239*0.1 = 0.0025",
        correct="0.0025",
    ),
    Published(
        "003",
        "backward, hidden layer",
        "dE_total/dW_i1h2",
        "dW1[0, 1]",
        "-0.0102",
        erratum="carried from the wrong dE/dh_out2 = -0.4654; correct -0.0566*0.2187*0.1 = -0.0012",
        correct="-0.0012",
    ),
    Published(
        "003",
        "backward, hidden layer",
        "dE_total/dW_i2h2",
        "dW1[1, 1]",
        "-0.0204",
        erratum="carried from the wrong dE/dh_out2 = -0.4654; correct -0.0566*0.2187*0.2 = -0.0025",
        correct="-0.0025",
    ),
    Published(
        "003",
        "SGD update, hidden layer",
        "W*_i1h1",
        "W1_new[0, 0]",
        "0.7007",
        erratum="update uses learning rate 0.2 instead of 0.02, on the wrong gradient -0.0037; "
        "correct 0.7 - 0.02*0.0025 = 0.6999",
        correct="0.6999",
    ),
    Published(
        "003",
        "SGD update, hidden layer",
        "W*_i1h2",
        "W1_new[0, 1]",
        "0.6020",
        erratum="update uses learning rate 0.2 instead of 0.02, on the wrong gradient -0.0102; "
        "correct 0.6 - 0.02*(-0.0012) = 0.6000",
        correct="0.6000",
    ),
    Published(
        "003",
        "SGD update, hidden layer",
        "W*_i2h1",
        "W1_new[1, 0]",
        "0.5015",
        erratum="update uses learning rate 0.2 instead of 0.02, on the wrong gradient -0.0075; "
        "correct 0.5 - 0.02*0.0051 = 0.4999",
        correct="0.4999",
    ),
    Published(
        "003",
        "SGD update, hidden layer",
        "W*_i2h2",
        "W1_new[1, 1]",
        "0.4041",
        erratum="update uses learning rate 0.2 instead of 0.02, on the wrong gradient -0.0204; "
        "correct 0.4 - 0.02*(-0.0025) = 0.4000",
        correct="0.4000",
    ),
)
