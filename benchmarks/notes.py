"""What profiling found, for the targets a run may miss; printed in RESULTS.md next to the numbers.

These are the findings of the investigation (HLO dumps of the compiled programs and side
experiments on the 2-core development machine), not numbers of the run that prints them: every
number in the tables above comes from that run.
"""

NOTES = {
    "overhead": """\
`jaxbp.fit` and `fit_ensemble` compile to the same program as the hand-written raw-JAX loop:
the optimized HLO of `fit` and of the raw `lax.scan` has the same ops and the same fusions for the
1-4-2-1 network (14 fusions and 14 copies per step in both), for the 1,000-model ensemble (14
fusions, 17 copies, 2 batched dots in both) and for the 64-128-128-10 MLP (the same fusion counts,
one extra bitcast). To get there, `fit` runs full-batch training as a single loop over epochs with
`x, y` as loop constants (a nested loop of one step per epoch cost a second loop level per step),
and cuts unshuffled mini-batches once with a reshape outside the loops (no gather). What remains
is `fit`'s Python work per call (validation, argument conversion): about 0.3 to 0.5 ms, spread
over the whole run. A ratio a few per cent below 0.95 therefore comes from timing noise, not from
extra work: on the 1-4-2-1 network, a separate A/B of the two alone (3 repetitions of 15 interleaved
rounds, 300,000 steps a run, load average about 1.2) gave raw/fit speed ratios of 0.993, 0.956 and
0.998, with a spread of 16 to 22% within each. An earlier version of the harness rotated the
order without reversing it and let garbage collection run inside timed calls, so `jaxbp.fit`
always ran right after Flax NNX's loop and paid for its garbage: two full runs gave 0.90 and 0.83
on the 1-4-2-1 network; with the fix, the same workload alone gave 1.004 (spread 8 to 11%). Compare
the *spread* column and the load average above; what closes a remaining shortfall is a quiet
machine and more rounds, not a change to `fit`.""",
    "tiny-vs-loops": """\
A fused step of the 1-4-2-1 network costs tens of nanoseconds, and the reason is not arithmetic
(about 60 FLOPs): in the compiled loop body XLA's CPU runtime runs 14 fusions and 14 copies of the
carried parameters per step, each dispatched separately, a few nanoseconds each. Tried: unrolling
the `lax.scan` (`unroll=2..16` made the loop 8 to 14 times slower on this jaxlib, measured); one
flat parameter vector as the carry (10 fusions and 5 copies instead of 14 and 14, but not faster
in an A/B on the shared machine); XLA's former whole-loop CPU code generation
(`--xla_cpu_use_thunk_runtime=false` is no longer supported by this jaxlib). A per-step loop in
Equinox or Flax pays its Python dispatch every step (tens to hundreds of microseconds). What would
close a missed 1,000x: a CPU runtime that compiles the whole loop body into one kernel, or a
custom kernel for the step; or more work per program (ensembles: see the per model-step cost).""",
    "mlp-vs-torch": """\
On this network both run the same matrix products through optimized CPU matmul kernels, and the
products are the whole cost (`jaxbp.fit` runs at the speed of the row *bound: the step's matmuls
alone*). PyTorch eager's per-op dispatch and autograd bookkeeping are small next to matmuls of this
size, so it runs close to the peak too, and no library can be 2x faster than a contender that is
above 50% of the peak. The 2x target assumes PyTorch eager at about 40% of the peak (the issue's
earlier measurement); on this machine and torch build (2 threads, see above) it was not. What
would close it: nothing in jaxbp; the ceiling below is the machine's.""",
    "mlp-peak": """\
The training step is bound by its matrix products: the row *bound: the step's matmuls alone* runs
only the 8 products of a step (3 forward, 3 weight gradients, 2 input gradients) without
activations, loss or update, and `jaxbp.fit` runs within a few per cent of it. The shortfall
against the square-matrix peak is therefore the matmul kernels' efficiency at this step's shapes:
the weight-gradient products `a^T @ delta` contract over the batch (256) with a transposed
operand, and the 1024x10 output layer is too thin to use the vector units fully. What would close
it: a larger batch (more work per weight update), or matmul kernels tuned for these shapes; no
change in `fit` can, since it adds nothing around the products.""",
    "ensemble-1000": """\
Per step, the 1,000-model program (the same HLO for `fit_ensemble` and the raw loop) runs 14 loop
fusions over the `(1000, ...)` parameter arrays, 17 copies of the carried parameters, and 2
batched dots (the 4x2 layer's forward product and its backward product, `f32[1000,1,4] x
f32[1000,4,2]`), which XLA's CPU runtime executes as 1,000 tiny matrix products. Tried: writing
the products as multiply-and-sum with the model axis first (10 times slower: reductions over
2- and 4-wide inner axes); with the model axis last, so that models are SIMD lanes (about 1.6x
faster at M = 100 and 1,000, 2.3x slower at M = 10,000, in an A/B on the shared machine). What
would close it: that lanes layout inside `fit_ensemble`, chosen by size, or a custom kernel.""",
}

CORE_USAGE_NOTE = """\
How to read it: XLA's CPU runtime parallelises inside one operation (its matmul thread pool) only
when the operation is large enough, and runs the operations of one program one after another, so
one small-MLP program keeps about one core busy. `fit_ensemble` makes each matmul M times larger
within one program; a batch of 128 makes it twice as large; two `fit` calls on two Python threads
are two programs running at the same time (JAX releases the GIL while a program runs). *cores
busy* above 1 with no gain in model-examples/s means the second core was busy but not useful.
In the development runs on this machine, only the two-threads layout turned the second core into
throughput (when a core was free), while vmap over 2 or 4 models and batch 128 stayed near one
core: independent runs (a sweep, a set of seeds) of a small network should go on separate threads
or processes, not into one vmapped program, to use both cores."""
