"""What profiling found, for targets a run may miss; printed in RESULTS.md next to the numbers."""

NOTES = {
    "overhead": "TODO",
    "seed-vs-loops": "TODO",
    "mlp-vs-torch": "TODO",
    "mlp-peak": "TODO",
    "ensemble-1000": "TODO",
}

STUDY_NOTE = "TODO"
