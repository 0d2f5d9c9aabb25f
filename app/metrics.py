"""The training metrics the app plots, and their titles: apart from the plots, so the Training form can list them
without importing pyqtgraph (which the first paint of the window does not need)."""

#: F_q is the variational free energy of each step's batch at that step's (jittered) training conditions: the engine
#: logs no fixed-grid evaluation during training, so the curve carries the jitter; the EMA line is the headline
METRICS = (("loss", "loss"), ("F_q", "F_q, training batch"), ("ess_fraction", "ESS / n"),
           ("grad_norm", "gradient norm"))
#: metrics drawn only once a record carries them: ``exact_gap`` (F_q minus the exact -log Z at each step's own
#: conditions, so the jitter cancels; logged wherever an exact method is cheap) is the headline learning curve;
#: AO-MAM runs log ``self_consistency``, ARM runs never do
OPTIONAL_METRICS = (("exact_gap", "gap to the exact free energy, F_q − F (per lattice)"),
                    ("self_consistency", "self-consistency"))
