"""What every figure in a report means: one source for report.md's Glossary section.

A criterion's ``details`` dict becomes the "figure | value" table of its section in report.md
(:func:`graders.reporting.markdown.key_figures`). Each name that table can show has one sentence here,
with its unit. Names are looked up in this order:

1. the exact name (``rss_growth_mb``);
2. a pattern, ``*`` standing for one or more characters (``*_median_ms`` covers ``eager_median_ms``);
3. for a flattened nested entry ``parent.child`` (``errors_pct.p50``, ``checks.<check name>``), the parent
   entry, then the child's own.

A test grades every part's reference and fails when one of its reported figures has no entry here
(``tests/course/test_grading.py``); add the sentence here when a criterion reports a new figure.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

__all__ = ["GLOSSARY", "PATTERNS", "explain", "glossary_rows", "unexplained"]

# ## Exact names ############################################################################
# Grouped by where they come from; "yours" is the learner's figure, "grader"/"true" the grader's own.

GLOSSARY: dict[str, str] = {
    # -- every criterion (graders/plugin.py, graders/harness) --
    "machine_noise": "How noisy the machine was while this criterion measured: IQR / median of the grader's "
                     "own timings in the same windows (0.1 = 10 %; above 0.1 a timing verdict may be inconclusive).",
    "traceback": "The last frames of the grader's own error (a grader bug, not your code).",
    "grader_workload_ms.before_your_import": "Milliseconds of the grader's own fixed workload (a small CNN, one "
                                             "thread), timed before your package was imported (graders/tamper/"
                                             "baseline.py).",
    "grader_workload_ms.after": "The same workload timed again after this criterion; more than 2x the figure before "
                                "your import is flagged (something slowed the grader's side, or the machine got busy).",
    "samples_unit": "The unit of the raw samples drawn in this criterion's plot.",
    "sample_marks": "Reference lines drawn in this criterion's plot (the bound, the pass and full-marks "
                    "limits), in the samples' unit.",
    "ratio_of": "What the paired ratios divide: time of the first side over time of the second, measured on "
                "the same inputs one right after the other (above 1: the second side is faster).",
    "median_ratio": "Median of the paired ratios (see ratio_of), x: the figure the verdict reads.",
    "ratio_q1": "First quartile (25th percentile) of the paired ratios, x.",
    "ratio_q3": "Third quartile (75th percentile) of the paired ratios, x.",
    "median_interval": "Confidence interval [low, high] of the median paired ratio, x: the verdict is "
                       "decided when the whole interval is on one side of the threshold.",
    "ratio_spread": "Spread of the paired ratios, (q3 - q1) / median (0.1 = 10 %).",
    "ratio_noise": "Noise of the paired ratios on the IQR / median scale: the larger of the IQR spread and "
                   "the robust CV (with few pairs, the plain CV too) (0.1 = 10 %).",
    "pairs": "Number of timed A/B pairs behind the median ratio (all attempts pooled).",
    "attempts": "Number of measurement attempts taken (another is taken while the result is undecided).",
    "attempt_spreads": "Noise of the paired ratios in each attempt, in order (0.1 = 10 %).",
    # -- phase 1: timing and memory --
    "true_mean_ms": "Mean time of one call measured by the grader's own clock around the same calls, ms.",
    "true_p50_ms": "Median (p50) latency measured by the grader on the same calls or requests, ms.",
    "true_p90_ms": "90th-percentile latency measured by the grader on the same calls, ms.",
    "true_p95_ms": "95th-percentile latency measured by the grader on the same requests, ms.",
    "true_p99_ms": "99th-percentile latency measured by the grader on the same requests, ms.",
    "true_throughput": "Requests answered per second as the grader's fake server counted them, req/s.",
    "your_mean_ms": "The mean latency your code reported, ms.",
    "your_p50_ms": "The median (p50) latency your code reported, ms.",
    "your_p90_ms": "The 90th-percentile latency your code reported, ms.",
    "your_p95_ms": "The 95th-percentile latency your code reported, ms.",
    "your_p99_ms": "The 99th-percentile latency your code reported, ms.",
    "your_throughput": "The throughput your load generator reported, req/s.",
    "grader_p50_ms": "Median time of one call by the grader's clock around the same calls you timed, ms.",
    "calls": "How many times your code called the function under test.",
    "calls_per_round": "How many times your code called the function in each measurement round (per batch "
                       "size where it is split).",
    "calls_per_run": "How many times your code called the function in each run.",
    "iterations": "The number of timed iterations the grader asked for (per batch size where it is split).",
    "iterations_per_run": "The number of timed iterations the grader asked for in each run.",
    "ratios": "Your figure over the grader's for each round, x (1.0 = agree).",
    "rounds": "Number of measurement rounds compared.",
    "method_robust_cv_pct": "Run-to-run variation of your p50 against the true time of the same calls, "
                            "robust coefficient of variation (1.4826 x MAD / median) of your p50 over the grader's, %.",
    "method_cv_pct": "Run-to-run variation of your p50 against the true time of the same calls, plain "
                     "coefficient of variation (std / mean) of your p50 over the grader's, %.",
    "your_raw_cv_pct": "Run-to-run coefficient of variation of your raw p50 figures (machine noise "
                       "included), %.",
    "your_sps": "The throughput your code reported in each round, per batch size, samples/s.",
    "grader_sps": "The grader's throughput of the same calls in each round, per batch size, samples/s.",
    "your_cpu_p50_ms": "The CPU p50 latency your code reported in each round, ms.",
    "grader_cpu_p50_ms": "The grader's p50 of the same CPU calls in each round, ms.",
    "your_cuda_p50_ms": "The CUDA p50 latency your code reported, ms.",
    "grader_cuda_p50_ms": "The grader's own CUDA p50 latency samples (CUDA events, synchronized), ms.",
    "allocated_bytes": "Bytes the grader allocated inside the measured region, bytes.",
    "your_delta_bytes": "The memory growth your code reported for that region, bytes.",
    "model": "The model the criterion ran.",
    "your_top5": "The five operators your profiler summary ranked first by self time.",
    "grader_top3": "The three operators the grader's own profile ranked first by self time.",
    "checks": "The checks this criterion ran: their count, or each check with its outcome "
              "(True = passed, or the problem found).",
    "missing": "The checks that were missing or wrong.",
    "n_samples": "Number of latency samples behind your report.",
    # -- phase 2: accuracy, sizes, graphs --
    "sqnr_db": "Signal-to-quantization-noise ratio of the output against FP32, dB (higher is closer; "
               "30 dB is about 3 % error).",
    "per_channel_sqnr_db": "SQNR of the weights quantized per channel through your functions, dB.",
    "per_tensor_sqnr_db": "SQNR of the same weights quantized with one scale per tensor, dB.",
    "pytorch_dynamic_sqnr_db": "SQNR of PyTorch's own quantize_dynamic on the same model and input, for "
                               "comparison, dB.",
    "relative_error": "Largest relative error of your dequantized values, |yours - exact| / |exact|.",
    "values_checked": "Number of quantized values compared with PyTorch's.",
    "values_wrong": "Number of those values that differ from PyTorch's.",
    "schemes": "Number of quantization schemes (dtype x symmetric x granularity) checked.",
    "fp32_top1_pct": "Top-1 accuracy of the FP32 model on the test split, %.",
    "bf16_top1_pct": "Top-1 accuracy of your BF16 model on the same split, %.",
    "fp16_top1_pct": "Top-1 accuracy of your FP16 model on the same split, %.",
    "int8_top1_pct": "Top-1 accuracy of your INT8 model on the same split, %.",
    "fp32_ms_batch32": "Time of one FP32 forward pass at batch 32, ms (informational).",
    "bf16_ms_batch32": "Time of one forward pass of your BF16 model at batch 32, ms (informational).",
    "bf16_speedup_informational": "FP32 time over your BF16 time at batch 32, x (reported, not graded).",
    "speedup_over_tf32_informational": "TF32 time over your FP16 time, x (reported, not graded).",
    "support": "Your precision_support answers per device/dtype (supported and reason).",
    "supported": "Whether your precision_support said the device/dtype runs natively.",
    "reason": "The reason your precision_support gave.",
    "batch": "Batch size of the timed inputs.",
    "batch_size": "Batch size of the inputs compared.",
    "gpu": "The GPU the criterion ran on.",
    "quantized_modules": "Number of modules that hold INT8 weights in your model.",
    "size_ratio": "Your INT8 file (or weights) over the FP32 one, x (0.25 is a quarter of the size).",
    "int8_nodes": "Conv/MatMul/Gemm nodes that compute in INT8 in your ONNX file.",
    "compute_nodes": "Conv/MatMul/Gemm nodes in your ONNX file in all.",
    "int8_share": "Share of the Conv/MatMul/Gemm nodes that compute in INT8 (1.0 = all).",
    "int8_bytes": "Size of your INT8 file, bytes.",
    "fp32_bytes": "Size of the FP32 file, bytes.",
    "engine_bytes": "Size of your serialized TensorRT engine, bytes.",
    "bytes": "Size of the file, bytes.",
    "ops": "How many nodes of each operator type the file holds.",
    "external_data": "Tensors kept in external data files instead of the model file (should be none).",
    "accuracy_pct": "Top-1 accuracy your trade-off row reports, %.",
    "grader_accuracy_pct": "Top-1 accuracy the grader measured for the same artifact, %.",
    "latency_ms": "Latency your trade-off row reports, ms.",
    "grader_latency_ms": "Latency the grader measured for the same artifact, ms.",
    "size_bytes": "File size your trade-off row reports, bytes.",
    "rows": "Each row of your trade-off study as the grader checked it.",
    "failed_checks": "The checks that failed, with the reason each gave.",
    "max_abs_diff": "Largest absolute difference between your outputs and eager PyTorch's.",
    "max_rel_diff": "Largest difference between your outputs and the original's, relative to the "
                    "largest original output.",
    "rel_diff": "Largest difference between your outputs and the reference's, relative to the largest "
                "reference output.",
    "grader_max_abs_diff": "Largest absolute difference of the grader's own export against eager PyTorch.",
    "your_max_abs_diff": "Largest absolute difference of your export against eager PyTorch.",
    "top1": "Top-1 accuracy of your engine on the digits test split, %.",
    "top1_eager": "Top-1 accuracy of eager PyTorch on the same split, %.",
    "top1_agreement": "Share of images whose top-1 class matches eager PyTorch's (1.0 = all).",
    "qdq_top1": "Top-1 accuracy of your Q/DQ (INT8) file on the digits test split, run by ONNX Runtime as written "
                "(optimizations off), %.",
    "quantize_nodes": "QuantizeLinear nodes in your Q/DQ file.",
    "dequantize_nodes": "DequantizeLinear nodes in your Q/DQ file.",
    "unquantized_layers": "Conv/Gemm/MatMul nodes whose input or weight does not come through a DequantizeLinear "
                          "(they would run in FP32; the first 10).",
    "calibration_batches_read": "Calibration batches your code took from the grader's reader (get_next calls that "
                                "returned a batch).",
    "images": "Number of test images compared.",
    "sizes_ok": "Batch sizes your exported model answered correctly.",
    "sizes_failed": "Batch sizes your exported model failed on.",
    "sizes": "Batch sizes the grader called your compiled model with.",
    "request_sizes": "Batch sizes of the grader's calls after your warm-up.",
    "warmup_graphs": "Graphs torch.compile compiled during your warm-up.",
    "request_graphs": "Graphs compiled during the grader's later calls (recompiles; 0 is best).",
    "graphs": "Graphs compiled in all.",
    "your_compile_s": "The compile time your code reported, s.",
    "grader_wall_s": "Wall-clock time of your warm-up as the grader measured it, s.",
    "compile_s": "Time of the first (compiling) call, s.",
    "eager_fp16_ms": "Time of one eager FP16 call, for reference, ms.",
    "levels": "Per ONNX Runtime optimization level: the level your session set, nodes saved and outputs.",
    "threads": "Intra-op threads each side used.",
    "seed": "Random seed this grade drew (its fresh test data, or the training seed and data subset it gave your "
            "code): rerun with it to reproduce.",
    "numbers_held": "Floating-point numbers (parameters and buffers) your folded model holds.",
    "ops_before": "Operator counts of the graph before your pass.",
    "ops_after": "Operator counts of the graph after your pass.",
    # -- phase 3: batching --
    "requests": "Number of requests sent (per model where it is split).",
    "concurrency": "Number of concurrent clients, each waiting for its answer before sending the next.",
    "lost": "Requests that never got an answer.",
    "wrong": "Requests answered with a wrong output (or, in the v2 protocol table, a wrong status or body).",
    "triton_max_abs_diff": "Largest absolute difference between your server's outputs and real Triton's, same requests.",
    "repository_folder": "The model folder your build_repository wrote, which both servers were to load.",
    # -- phase 4: server scale and faults (graders/phase4/server/test_scaling.py) --
    "rows_per_request": "Frames (rows of the batch dimension) in each request of the load.",
    "your server frames_per_s": "Frames per second your server answered right in each round (100 streams).",
    "real Triton frames_per_s": "Frames per second real Triton answered right in each round, same load and client.",
    "your server p50_ms": "Median latency of your server's requests in each round, ms, the client included.",
    "real Triton p50_ms": "Median latency of real Triton's requests in each round, ms, the client included.",
    "your server p99_ms": "99th-percentile latency of your server's requests in each round, ms.",
    "real Triton p99_ms": "99th-percentile latency of real Triton's requests in each round, ms.",
    "model_alone_frames_per_s": "The GPU criterion's ResNet-50 called directly on this GPU at batch 32 (FP32, median "
                                "call), frames/s: what no server of it can beat.",
    "share_of_model_alone_pct": "Your server's best frames/s as a share of model_alone_frames_per_s, %.",
    "kill": "The load run during which the grader killed one of your worker processes.",
    "kill.availability": "Share of that run's requests answered right (a 503 retried once counts when the retry was "
                         "answered); the seed asks for 99.9 %.",
    "kill.retried": "Requests answered 503 with Retry-After and sent again once.",
    "kill.worker_back_s": "Seconds from the kill until two worker processes ran again.",
    "drain": "The load run during which the grader stopped your server.",
    "drain.sent_before_stop": "Requests sent before the stop began: each must be answered (200, or a 503).",
    "drain.stop_took_s": "Seconds ServerThread.stop took: stop being ready, answer what is in flight, close.",
    "drain.dropped": "Requests sent before the stop that were cut off or answered wrong, by outcome.",
    # -- phase 4: the load tool (graders/phase4/server/test_loadtool.py) --
    "server_requests": "Requests the grader's planned server received from your load tool (each retry is one).",
    "server_kinds": "How the planned server answered them, by its plan: ok, wrong, 500, 503 (with Retry-After), "
                    "cut (connection closed, no reply).",
    "your_outcomes": "Your records, counted by outcome.",
    "your_retries": "Retries in your records (one per 503 with Retry-After that was not the second).",
    "server_peak_in_flight": "The most of your requests the planned server had in flight at once (100 streams).",
    "run_took_s": "Seconds your run_load took, end to end (warm-up + duration + what was in flight at the end).",
    "latency": "Your p50/p95/p99 of ok first tries, ms, beside the server's own time for its ok replies.",
    # -- phase 4: server robustness (graders/phase4/server/test_robustness.py) --
    "slow_loris": "While 100 connections sent their requests slowly: the grader's probe requests and what the 50 "
                  "slow bodies got.",
    "flood": "While 200 streams sent as fast as they could: the probe's answers and the flood's, by outcome.",
    "after": "The server after both attacks: health, readiness and a probe request.",
    "slow_loris.slow_bodies_answered_408": "Slow request bodies the server cut off with 408 after its body timeout "
                                           "(of 50).",
    "slow_loris.slow_body_answers": "The status lines the slow body senders received.",
    "after.live": "HTTP status of /v2/health/live after the attacks (200: the server is up).",
    "after.ready": "HTTP status of /v2/health/ready after the attacks (200: it takes requests).",
    # -- phase 4: server metrics (graders/phase4/server/test_metrics.py) --
    "load": "The grader's load of 16 concurrent streams, after its script of single requests.",
    "load.p95_ms": "95th-percentile latency of the load's requests, ms, measured by the grader's client.",
    "load.requests_per_s": "Requests per second the load's streams got answered.",
    "server": "What your /metrics page said after the script and the load.",
    "server.success": "nv_inference_request_success on your page: requests answered 200.",
    "server.executions": "nv_inference_exec_count on your page: batches the model ran.",
    "server.inferences": "nv_inference_count on your page: rows inferred, over all batches.",
    "server.histogram_sum_s": "Sum of your latency histogram: seconds your successful requests spent in the server.",
    "server.client_sum_s": "Seconds the same requests took as the grader measured them, from outside the server.",
    "access_log_lines": "Lines your server wrote on the inference_lab.access logger during the grade.",
    "duplicated": "Requests computed more than once by the model.",
    "worst_abs_diff": "Largest absolute difference between a batched answer and the model's own answer.",
    "model_calls": "Times the model was called (per model where it is split).",
    "mean_batch_size": "Mean number of requests per model call.",
    "errors": "The kinds of errors requests failed with, and how many of each.",
    "throughput_req_s": "Requests answered per second, req/s.",
    "checked_outputs": "Outputs compared with the model's own answers.",
    "wrong_outputs": "Checked outputs that were wrong or missing.",
    "failed_requests": "Requests that failed with an error.",
    "input_shape": "Shape of one request's input.",
    "max_batch_size": "The batcher's max_batch_size: most requests merged into one model call.",
    "max_queue_delay_ms": "The batcher's max_queue_delay: longest a request may wait for batch-mates, ms.",
    "requests_per_run": "Requests sent in each run of the comparison.",
    "unbatched_req_s": "Throughput of the unbatched server (one model call per request), req/s.",
    "batched_req_s": "Throughput of your batcher on the same requests, req/s.",
    "speedup_x": "Batched server throughput over unbatched server throughput, x.",
    "model_ceiling_x": "The workload model's own throughput at max_batch_size over batch 1, called directly "
                       "with no batcher, same thread count, same run, x: the most batching can give.",
    "model_ceiling_interval": "90 % confidence interval [low, high] of model_ceiling_x, x.",
    "model_ceiling_pairs": "Timed pairs behind model_ceiling_x: the same samples one by one at batch 1, then "
                           "as one max_batch_size call.",
    "speedup_interval": "Confidence interval [low, high] of speedup_x (a median of paired ratios), x.",
    "model_b1_samples_s": "That model's throughput called directly at batch 1, samples/s.",
    "model_bmax_samples_s": "That model's throughput called directly at max_batch_size, samples/s.",
    "efficiency_pct": "Your speed-up as a share of the model's ceiling: 100 x (speedup_x - 1) / "
                      "(model_ceiling_x - 1), %.",
    "wrong_rows_batches": "Batches for which the grader's model returned one row too few (they must fail whole).",
    "wrong_rows_answered": "Requests of such a batch that got an answer anyway (each one is a mistake).",
    "wrong_rows_unsettled": "Requests of such a batch that never got an answer or an error (each one is a mistake).",
    "machine_concurrency_x": "What the pool's four models gain on this machine from computing at once, one "
                             "grader thread each, called directly (no pool), over one after another, x.",
    "machine_concurrency_interval": "90 % confidence interval [low, high] of machine_concurrency_x, x.",
    "machine_concurrency_pairs": "Timed pairs behind machine_concurrency_x (one after another, then all at once).",
    "pool_concurrency_x": "Your pool's aggregate throughput with all four models at once over one model after "
                          "another, same requests, x.",
    "pool_share_pct": "Your pool's gain as a share of the machine's: 100 x pool_concurrency_x / "
                      "machine_concurrency_x, %.",
    "full_batch_dispatch_ms": "Time from the max_batch_size-th submit to the model call starting, median "
                              "of trials, ms (a full batch should not wait for the delay).",
    "lone_dispatch_late_ms": "How long after its max_queue_delay a lone request's model call started, "
                             "median of trials, ms.",
    "full_batch_trials_ms": "Each trial's time from the max_batch_size-th submit to the model call starting, ms.",
    "lone_late_trials_ms": "Each trial's delay between a lone request's max_queue_delay running out and its "
                           "model call starting, ms.",
    "cancelled": "Requests cancelled by their client while still queued.",
    "cancel_state_lost": "Cancelled futures that were later given a result or an error (0 is right).",
    "kept_wrong": "Requests batched with cancelled ones that got a wrong answer or none.",
    "after_ok": "Whether the next request after a batch with cancelled ones was answered (the worker lived).",
    "cancelled_computed": "Requests cancelled by their client while queued that the model still computed "
                          "(0 is right).",
    "wrong_rows_mishandled": "Answers with the wrong number of rows that your batcher did not turn into an "
                             "error for the requests concerned.",
    "checks_failed": "Number of checks that failed.",
    "bound_ms": "The latency bound: max_queue_delay + one full batch's compute + slack, ms.",
    "batch_compute_ms": "Time of one model call at max_batch_size, measured by the grader, ms.",
    "slack_ms": "Allowance in the bound for scheduling and the machine: 2 x batch compute + 20 ms, ms.",
    "closed_concurrency": "Concurrent clients in the closed-loop load.",
    "closed_p50_ms": "Median latency under the closed-loop load, ms.",
    "closed_p99_ms": "99th-percentile latency under the closed-loop load, ms.",
    "closed_n": "Requests answered under the closed-loop load.",
    "poisson_rate_req_s": "Offered rate of the Poisson (random arrivals) load, req/s.",
    "poisson_p50_ms": "Median latency under the Poisson load, ms.",
    "poisson_p95_ms": "95th-percentile latency under the Poisson load, ms.",
    "poisson_p99_ms": "99th-percentile latency under the Poisson load, ms.",
    "poisson_n": "Requests answered under the Poisson load.",
    "poisson_graded": "Which percentile of the Poisson latencies is graded (the highest the sample size "
                      "supports).",
    "sender_lag_p99_ms": "99th percentile of how late the grader's sender submitted each Poisson arrival "
                         "after its scheduled time, ms (large: the machine, not your batcher, was slow).",
    "attempt_worst_ms": "The worst graded latency of each attempt, ms.",
    "machine_longest_stall_ms": "Longest pause of a canary thread during each attempt, ms: the machine "
                                "stalling everything, not your code.",
    "machine_stalls_measured": "Whether the canary that measures machine stalls could run.",
    "problems": "What was wrong, one line each (empty: nothing).",
    "poisoned": "Indices of the requests whose input makes the model raise.",
    "batched_with_poison": "Indices of requests that shared a model call with a poisoned one.",
    "bad_submits_mishandled": "Malformed submits not refused with InvalidRequest.",
    "after_failed": "Requests that failed after the bad ones (the batcher should keep serving).",
    "submits": "submit() calls made during the flood.",
    "refused": "Requests refused (Overloaded) instead of queued.",
    "accepted": "Requests accepted during the flood.",
    "other_errors": "submit() calls that raised something other than Overloaded.",
    "peak_outstanding": "Most requests accepted but not yet answered at one moment.",
    "allowed_outstanding": "The most outstanding requests allowed: max_queue_size + 2 x max_batch_size "
                           "+ 1 (the queue plus batches being formed or computed).",
    "submit_p50_ms": "Median time of one submit() call during the flood, ms.",
    "submit_p99_ms": "99th-percentile time of one submit() call during the flood, ms.",
    "submit_max_ms": "Longest single submit() call during the flood, ms (one slow call can be the machine).",
    "rss_growth_mb": "Growth of the process's resident memory (RSS) during the flood, MiB.",
    "recovery_failed": "Requests that failed after the flood ended (the batcher should recover).",
    "hung": "Accepted requests still unanswered at the timeout.",
    "failed_accepted": "Accepted requests that failed.",
    "notes": "Extra observations (threads left running, ...).",
    "failed": "Requests that failed with an error.",
    "wrong_in_sample": "Wrong outputs among the sampled answers.",
    "peak_models_at_once": "Most pool models computing at the same moment.",
    "share_of_busy_time_with_2_or_more": "Share of the busy time during which two or more models computed "
                                         "at once (1.0 = all of it).",
    "offered_rate": "Arrival rate your load generator was asked for, req/s.",
    "seen_rate": "Arrival rate the grader's server saw, req/s.",
    "gap_cv": "Coefficient of variation of the gaps between arrivals (1.0 for Poisson arrivals).",
    "arrivals": "Requests that arrived at the grader's server.",
    "server_max_in_flight": "Most requests in flight at the grader's server at one moment.",
    "errors_pct": "Relative error of each figure your load generator reported against the grader's, %.",
    # -- phase 3: gpu part, the router (graders/phase3/gpu/test_router.py) --
    "devices": "How many devices (worker processes, or GPUs) your router served on.",
    "rows_per_device": "Rows each worker process computed, from the grader's own record in shared memory (not your "
                       "stats()).",
    "busy_ms_per_device": "Milliseconds each device's worker spent in the model's forward (wall clock): a device "
                          "that got fewer rows because it was slower still shows its share of the time.",
    "batches_per_device": "Model calls each worker process made, from the grader's own record.",
    "throughput_per_s": "Requests answered per second over the whole load, as the grader's clients saw it.",
    "killed_after_rows": "Rows computed (all workers) when the grader killed one worker with SIGKILL.",
    "after_kill_failed": "Of 32 new requests sent after the kill, how many failed.",
    "warmup_throughput_per_s": "Requests per second during the warm-up before the kill.",
    "survivor_rows": "Rows computed by the workers the grader did not kill.",
    "share_pct_rounds": "Per round: your router's scaling efficiency as a share of the machine's own, %.",
    "router_efficiency_pct_rounds": "Per round: throughput of your router on N devices / (N x on one), %.",
    "machine_efficiency_pct_rounds": "Per round: the same for the grader's own N processes running the model with "
                                     "no router (what the machine allows at that moment), %.",
    "throughput_1_device_per_s": "Per round: your router's throughput on one device, requests/s.",
    "throughput_all_devices_per_s": "Per round: your router's throughput on every device, requests/s.",
    # -- phase 3: gpu part, CUDA graphs and streams (graders/phase3/gpu/test_graphs.py, test_streams.py) --
    "p50_ratio": "Eager p50 latency over your graphed p50 (each side's median of the same paired calls), x.",
    "models": "The models run together, in order.",
    "wrong_models": "Models whose output was wrong on either call (missing, mis-shaped or off by more than the tolerance).",
    "streams_seen": "Distinct CUDA streams the grader's spies saw the models' forwards run on (yours plus the sequential one).",
    "your_concurrent_ms": "Time of one round with each model on its own stream, as your report gave it, ms.",
    "your_sequential_ms": "Time of one round with the models one after another on one stream, as your report gave it, ms.",
    "your_speedup": "Your report's sequential_ms / concurrent_ms, x.",
    "your_streams": "How many streams your report says the concurrent rounds used.",
    "grader_sequential_ms": "One sequential round of the same models and inputs, timed by the grader itself, ms.",
    "grader_call_ms": "Wall time of one run_on_streams(repeats=grader_repeats, warmup=0) call, by the grader's clock, ms.",
    "grader_repeats": "Rounds of each kind in each call the grader timed.",
    "grader_concurrent_ms": "The concurrent round's share of your call as the grader derives it: call / repeats - "
                            "sequential round, ms.",
    "grader_speedup": "grader_sequential_ms / grader_concurrent_ms, x.",
    # -- phase 3: gpu part, memory (graders/phase3/gpu/test_memory.py, memory_probe.py) --
    "your_fixed_bytes": "The intercept of your fitted memory line (MemoryModel.fixed_bytes): peak bytes that do not "
                        "depend on the batch, bytes.",
    "your_bytes_per_sample": "The slope of your fitted memory line (MemoryModel.bytes_per_sample), bytes per sample.",
    "your_measured_bytes": "The forward peaks your fit_memory_model measured, per batch size, bytes.",
    "grader_measured_bytes": "The forward peaks the grader measured itself at the same batch sizes (its own probe, "
                             "memory_probe.py), bytes.",
    "checked_batches": "Per batch size the grader checked: your line's predicted peak, the peak the grader measured, "
                       "and the error, bytes and %.",
    "prediction_error_pct": "The largest |predicted - measured| / measured over the batch sizes the grader checked, %.",
    "budget_bytes": "The memory budget the grader set for one forward's peak, bytes.",
    "true_largest_batch": "The largest batch whose peak fits the budget, found by the grader's own search and "
                          "measurements.",
    "your_largest_batch": "The batch your largest_batch_under_budget answered for the grader's budget.",
    "hidden_limit": "The largest chunk (rows) the grader's fault-injecting model accepts before raising "
                    "torch.OutOfMemoryError.",
    "runner_rows": "Rows in the batch the grader sent through your OomSafeRunner.",
    "oom_errors_raised": "How many times the grader's model raised torch.OutOfMemoryError during that call.",
    "your_oom_events": "The out-of-memory count your OomSafeRunner reported (oom_events).",
    "your_max_batch_after": "Your OomSafeRunner's max_batch after the call, rows.",
    "chunk_sizes_tried": "The sizes of the chunks your OomSafeRunner passed to the model, in order (the first ones), rows.",
    "error_when_nothing_fits": "What your OomSafeRunner raised on a model that runs out of memory even on one row.",
    "cuda_cap": "The run under a real CUDA memory cap (set_per_process_memory_fraction): the model, the cap above what "
                "was reserved (bytes), your oom_events and final max_batch.",
    "naive_peak_bytes": "Peak bytes of one forward of the naive server (float32, autograd on) at the batch size shown, "
                        "grader's probe, bytes.",
    "your_peak_bytes": "Peak bytes of one call of your lean server on the same batch, grader's probe, bytes.",
    "peak_share_pct": "Your lean server's peak over the naive server's, %: the figure graded.",
    "speed_vs_naive_x": "The naive server's time over your lean server's on the same batches (median of paired "
                        "ratios), x: above 1 yours is faster.",
    "operators_seen": "PyTorch operators the grader's CPU profiler saw on the calling thread during your lean call "
                      "(-1 on CUDA, not counted).",
    "compute_layers": "Convolution and linear layers in the model: the fewest operators a forward must show.",
    # -- phase 3: gpu part, the prefetcher (graders/phase3/gpu/test_prefetch.py, prefetch_workload.py) --
    "prefetch_depth": "The depth (queue capacity, in batches) the grader gave your Prefetcher.",
    "staged_early_share": "Share of batches whose preprocessing had finished before the grader's consumer asked for "
                          "them, while it held the previous batch 25 ms (0-1; a synchronous prefetcher gets 0).",
    "max_staged_ahead": "Most items whose preprocessing had started beyond those the consumer had received (depth + 1 "
                        "allowed).",
    "error_at_item": "The item index on which the grader's preprocess raised.",
    "close_ms": "Time from the consumer's break to the end of its with block (your close()), ms.",
    "preprocess_calls_after_early_exit": "Items preprocessed in all when the consumer took 3 of 30 batches and left the "
                                         "with block (at most 3 + depth + 2 allowed).",
    "image_size": "Side of the grader's source images, pixels, chosen on this machine so that preprocessing a batch "
                  "takes about as long as the model step.",
    "model_repeats": "Model calls per batch in the grader's model step (above 1 only where the model is much faster than "
                     "preprocessing, e.g. on a GPU).",
    "batches_per_run": "Batches in each timed run (naive loop, your prefetched loop, the grader's overlap).",
    "rounds_counted": "Rounds in which the grader's own two threads gained at least 1.3x from overlapping (a second core "
                      "was free); only these count.",
    "preprocess_ms_per_batch": "The grader's preprocessing of one batch, timed inside the naive loop, ms (median over "
                               "rounds).",
    "model_ms_per_batch": "The model step on one batch (to the device, the model, the answer back), timed inside the "
                          "naive loop, ms (median over rounds).",
    "overlap_speedup_x": "Naive loop time over your prefetched loop's, median over all rounds, x.",
    "overlap_ceiling_x": "Naive loop time over the grader's own two threads running the two halves at once, median over "
                         "all rounds, x: the most overlapping gains here.",
    "two_stage_bound_x": "What a two-stage pipeline could gain on two free cores from the measured halves: (p + m) / "
                         "((p + m) / n + (n - 1) / n x max(p, m)), x (reported, not graded).",
    "overlap_share_pct": "Your share of the overlap gain: 100 x sum(speed-up - 1) / sum(ceiling - 1) over the counted "
                         "rounds, %.",
    "overlap_share_interval": "90 % bootstrap interval [low, high] of overlap_share_pct, %.",
    "share_noise": "Spread of the per-round shares, IQR / median (0.1 = 10 %).",
    "counted_speedup_x": "Mean speed-up of your prefetched loop over the naive loop in the counted rounds, x.",
    "counted_ceiling_x": "Mean overlap gain of the grader's own two threads in the counted rounds, x.",
    # Phase 4, pipeline: streams, capacity, accuracy, overload, faults, soak
    "streams": "Live streams (or clips) the grader played at once in this check.",
    "released": "Frames the grader's sources released, counted by the grader itself.",
    "answered": "Frames your pipeline answered through on_result, counted by the grader.",
    "wall_s": "Seconds your Pipeline.run took, timed by the grader.",
    "stream_s": "Length of each stream in seconds (frames / 30 FPS).",
    "p99_latency_ms": "99th percentile of end-to-end latency, frame release to on_result, on the grader's clock, ms.",
    "streams_sustained": "Most live 30 FPS streams your pipeline sustained (< 1 % dropped, p99 under the bound).",
    "ceiling_streams": "This machine's ceiling: cores x 1000 / (30 x the grader's single-thread cost per frame).",
    "frame_cost_ms": "The grader's own cost per frame in one thread (decode, propose, classify, track), ms: the "
                     "lower of the measurements before and after the trials.",
    "frame_cost_before_ms": "The same cost measured before the trials, ms.",
    "frame_cost_after_ms": "The same cost measured after the trials, ms (25 % away from before: a noisy machine).",
    "cores": "CPU cores this grade may use.",
    "fps_sustained": "Frames per second of the sustained streams together.",
    "trials": "Each load tried: streams, dropped %, p99 latency and whether it was sustained.",
    "latency_bound_ms": "The p99 end-to-end latency a sustained load must stay under, ms.",
    "frames_per_call": "Frames answered per classifier call in the flooding run: how much the inference stage batched.",
    "classifier_calls": "Classifier calls the grader's spy counted.",
    "crops_per_call": "Mean crops per classifier call.",
    "f1_fp32": "Detection F1 of your pipeline with the FP32 classifier (a fraction).",
    "f1_optimized": "Detection F1 of your pipeline with your optimized classifier, same clips (a fraction).",
    "size_pct": "Saved size of your optimized classifier as a share of the FP32 one's, %.",
    "f1_pct": "Your pipeline's detection F1 at IoU 0.5 against the ground truth, %.",
    "detector_f1_pct": "The grader's own run of the detector on the same frames: its F1 at IoU 0.5, %.",
    "precision_pct": "Share of your detections that match a ground-truth digit (box and label), %.",
    "recall_pct": "Share of ground-truth digits your detections found, %.",
    "f1_per_clip": "Detection F1 on each clip (a fraction).",
    "tp": "Detections matching a ground-truth digit, box and label.",
    "fp": "Detections matching none.",
    "fn": "Ground-truth digits no detection matched.",
    "idf1_share_pct": "Your IDF1 over the detector's own F1 on the same frames, %: the figure graded.",
    "idf1_pct": "IDF1 from motmetrics: the share of detections given the right identity, %.",
    "mota_pct": "MOTA from motmetrics: 1 - (misses + false positives + identity switches) / objects, %.",
    "id_switches": "Times a ground-truth object's track id changed (motmetrics).",
    "id_switches_per_100_frames": "Identity switches per 100 frames.",
    "events": "Events your pipeline reported (enter, leave, cross).",
    "cross_events": "Line-crossing events your pipeline reported.",
    "true_crossings": "Line crossings in the ground truth (box centre across the line between sightings).",
    "drop_pct": "Share of released frames not answered (dropped), %.",
    "recovered_p99_ms": "p99 latency of the steady stream's last third, once the burst had ended, ms.",
    "stalled_run_s": "Seconds your run() took with a classifier that hangs.",
    "stalled_frames_released": "Frames released in the run with the hung classifier.",
    "seconds": "Length of the soak run, s.",
    "rss_slope_mb_per_min": "Theil-Sen slope of the process's resident memory after warm-up, MiB per minute.",
    "rss_mb_first": "Resident memory at the first sample after warm-up, MiB.",
    "rss_mb_last": "Resident memory at the last sample, MiB.",
    "p50_latency_first_ms": "Median latency early in the soak (after warm-up), ms.",
    "p50_latency_last_ms": "Median latency in the soak's last third, ms.",
    "exit_code": "What the command returned (0: every stream completed without error).",
    "curve": "The capacity curve: p99 latency and dropped % against the number of live streams (plotted).",
    "picture": "Your annotate_frame on a frame of this grade's clip (shown as a picture).",
    # Phase 4, part edge
    "fp32_max_abs_diff": "Largest absolute difference between your FP32 export's outputs and the model's.",
    "int8_size_share": "Size of the INT8 file over the FP32 file's (0.25 = a quarter).",
    "int8_top1_agreement": "Share of crops on which the INT8 model's top-1 class is the FP32 model's (1.0 = all).",
    "bundle_mb": "Size of the bundle folder on disk, every file counted, MiB.",
    "size_budget_mb": "The most the bundle folder may hold on disk, MiB.",
    "peak_rss_mb": "Peak resident memory (VmHWM) of the bundle's process on the edge device, MiB.",
    "frames": "Frames the grader released to the bundle in the part of the run this criterion reads.",
    "variants": "Variants the bundle named, or how many frames each variant answered.",
    "detections": "Detections of the course's FP32 detector on the frames checked.",
    "detections_matched": "Of those, how many the bundle's first variant found with the same box and label.",
    "camera_dropped": "Frames the grader's camera dropped because the runner was not reading its input in time.",
    "fps_answered": "Frames answered per second of clip (30 = every frame of the 30 FPS clip).",
    "p50_ms": "Median latency from a frame's release to its answer, on the grader's clock, ms.",
    "p99_ms": "99th-percentile latency from a frame's release to its answer, on the grader's clock, ms.",
    "f1": "Detection F1 at IoU 0.5 of the bundle's answers against the clip's ground truth (an unanswered frame "
          "predicts nothing).",
    "fp32_f1": "Detection F1 of the course detector with the original FP32 model on the same frames.",
    "slow_frames": "Frames released while the busy processes shared the device's core.",
    "missed": "Of those, frames answered later than 50 ms after their release, or never answered.",
    "after_missed": "Frames that missed the deadline after the slowdown ended.",
    "busy_processes": "Busy processes the grader pinned to the device's core during the slowdown.",
    "usual_variant": "The variant the bundle ran most before the slowdown: the one it must come back to.",
    "restored_after_s": "Seconds after the slowdown ended until a frame was answered with that variant again.",
    "slow_variants": "How many frames each variant answered during the slowdown.",
    "slow_s": "Start and end of the slowdown, seconds after the first frame.",
    "device_contention_pct": "Share of the time the bundle's process waited for its core while it wanted it, in "
                             "the normal part of the run, %: another process shared the core (0 on a free core).",
    "after_contention_pct": "The same share after the slowdown ended, %: above 15 % the device had not recovered.",
    "normal_contention_pct": "The same share before the slowdown, %.",
    "files": "The files in the bundle folder, paths relative to it.",
    "timeline": "Per frame of the live run: its release time (s after the first frame), the variant that answered "
                "it (none: unanswered) and its latency (ms); plotted as the variant timeline.",
    "your_rows": "Your trade-off table: one row per variant with its median latency (ms), F1, model file size (bytes) "
                 "and memory estimate (MiB).",
    "grader_rows": "The grader's own run of each variant on the device: F1, median latency (ms), CPU ms per frame, "
                   "peak RSS (MiB), model file size (bytes).",
    "front": "The variants on the Pareto front of your rows (nothing beats them on every axis).",
    # p2.compression
    "amount": "The fraction of weights the grader asked magnitude_prune to zero (drawn at random, 0.3-0.8).",
    "checked_values": "How many weight values the grader compared with its own 2:4 pattern.",
    "wrong_values": "Weight values (or mask entries) that differ from the grader's 2:4 pattern.",
    "epochs": "Passes over the training images your training made (FineTuneConfig.epochs; for distillation, "
              "DistillConfig().train.epochs).",
    "alone_cross_entropy": "Test-split cross-entropy (nats, per image) of the student your train_student trained "
                           "without a teacher, counted by the grader in float64.",
    "distilled_cross_entropy": "Test-split cross-entropy (nats, per image) of the same student trained with the "
                               "teacher, counted by the grader in float64.",
    "alone_top1_pct": "Top-1 of the student trained without a teacher on the digits test split, %.",
    "distilled_top1_pct": "Top-1 of the student trained with the teacher on the digits test split, %.",
    "top1_gain_pt": "Distilled top-1 minus alone top-1, points (reported, not graded: one test image is 0.28 pt).",
    "student_params": "Parameters of the student your make_student builds, counted by the grader.",
    "teacher_params": "Parameters of the teacher (the digits ResNet-18).",
    "temperature": "The distillation temperature T of your DistillConfig().",
    "alpha": "The soft (teacher) term's weight in your DistillConfig(); the hard labels get 1 - alpha.",
    "equivalence_error": "Largest |your pruned model - the original with the dropped channels silenced| over the "
                         "largest |logit|, before fine-tuning (0 when the channel surgery is exact).",
    "flops": "Forward FLOPs per sample of [the original, your pruned model], counted by the grader with "
             "FlopCounterMode (a multiply-add is 2).",
    "params": "Parameters of [the original, your pruned model], counted by the grader.",
    "keep_ratio": "The fraction of each block's inner channels the grader asked prune_resnet_channels to keep.",
    "param_cut_pct": "Parameters removed by your channel pruning, % of the original's.",
    "pruned_top1_pct": "Top-1 of your pruned, fine-tuned model on the digits test split, measured by the grader, %.",
    "recalibrated_top1_pct": "Top-1 of your pruned model after recalibrate_batchnorm, before fine-tuning, measured by "
                             "the grader on the test split, %.",
    "unpruned_top1_pct": "Top-1 of the unpruned digits ResNet-18 on the test split, measured by the grader, %.",
    "unstructured_50pct_ms": "Median time of the grader's 50 %-unstructured-pruned copy in the same run, ms "
                             "(reported, not graded).",
    "unstructured_50pct_ratio": "Dense time over the 50 %-unstructured-pruned copy's time, x: about 1, because "
                                "dense kernels multiply zeros too (reported, not graded).",
    "fake_quantize": "FakeQuantize nodes in the openvino.Model your quantize_openvino returned (NNCF puts them "
                     "before each quantized convolution or matmul and on its weights).",
    "int8_conv_share": "The share of the INT8 model's convolution time that your kernel_profile puts in INT8 "
                       "kernels (an exec_type containing I8), 0..1.",
    "openvino_fp32_over_ort": "ONNX Runtime FP32 time / OpenVINO FP32 time in the same run, one thread each, x: "
                              "above 1, OpenVINO is faster (reported, not graded).",
    "openvino_measured_ms": "The grader's median time of one inference of the compiled INT8 model, ms.",
    "openvino_rows": "The first rows of your kernel_profile: node type / kernel (exec_type), ms per inference.",
    "openvino_total_ms": "The sum of your kernel_profile's rows, ms per inference.",
    "ort_fp32_ms": "Median time of the grader's one-thread ONNX Runtime FP32 session in the same run, ms.",
    "ort_measured_ms": "The grader's median time of one inference of its own one-thread ONNX Runtime session, ms.",
    "ort_rows": "The first rows of your ort_kernel_profile: operator / execution provider, ms per inference.",
    "ort_total_ms": "The sum of your ort_kernel_profile's rows, ms per inference.",
    "worst_relative_error": "The largest relative error of your loss value or its gradient against the grader's "
                            "float64 formula, over every case.",
}

# ## Patterns: names built from a variable part ##############################################

PATTERNS: dict[str, str] = {
    "*_median_ms": "Median time of one timed run of the side the name gives in the paired comparison "
                   "(see ratio_of), ms.",
    "bs*_yours_sps": "The throughput your code reported at that batch size (median of rounds), samples/s.",
    "bs*_grader_sps": "The grader's throughput of the same calls at that batch size (median of rounds), samples/s.",
    "bs*_ratios": "Your throughput over the grader's at that batch size, per round, x.",
    "max_abs_diff_*": "Largest absolute difference between that format's outputs and eager PyTorch's.",
    "error_pct[*]": "Your observer's range error for that data, as a share of the data's range, %.",
    "*_yours_mse": "Mean squared quantization error with your observer's range on that data.",
    "*_best_mse": "The lowest mean squared error any range gives on that data (found by search).",
    "*_minmax_mse": "Mean squared error of the plain min-max range on that data.",
    "*_data_range": "Smallest and largest value of that data.",
    "*_range": "The [low, high] range your observer chose for that data.",
    "*_sqnr_db": "SQNR of that mode's output against FP32, dB.",
    "*_size_ratio": "That mode's weights over the FP32 weights, x.",
    "*_layer_sparsity": "Fraction of zeros the grader counted in each layer's weight after that scope's pruning.",
}


@lru_cache(maxsize=None)
def _pattern(p: str) -> re.Pattern:
    return re.compile("".join(".+" if ch == "*" else re.escape(ch) for ch in p) + r"\Z")


def _own(name: str) -> tuple[str, str] | None:
    if name in GLOSSARY:
        return name, GLOSSARY[name]
    for pat, text in PATTERNS.items():
        if _pattern(pat).match(name):
            return pat, text
    return None


def explain(field: str) -> tuple[str, str] | None:
    """``(term, meaning)`` for a reported figure name, or None when the glossary has no entry.

    ``term`` is the glossary entry that explains it: the name itself, the pattern it matches, or for a
    flattened ``parent.child`` the parent's (or the child's) entry.
    """
    field = str(field)
    hit = _own(field)
    if hit is None and "." in field:
        parent, _, child = field.partition(".")
        hit = _own(parent) or _own(child)
    return hit


def glossary_rows(fields: Iterable[str]) -> list[tuple[list[str], str]]:
    """``(names, meaning)`` per glossary entry explaining ``fields``, sorted by name.

    ``names`` are the figures as the report shows them: the name itself, each name a pattern matched,
    ``parent.*`` for the flattened children of a parent entry. A name with no entry is listed with a note.
    """
    rows: dict[str, tuple[list[str], str]] = {}
    for f in map(str, fields):
        hit = explain(f)
        term, text = hit if hit is not None else (f, "(no explanation recorded yet)")
        if f.startswith(term + "."):
            shown = f"{term}.*"
        elif f.endswith("." + term):
            shown = f"*.{term}"
        else:
            shown = f
        names, _ = rows.setdefault(term, ([], text))
        if shown not in names:
            names.append(shown)
    return sorted(rows.values(), key=lambda row: row[0][0].lstrip("*.").lower())


def unexplained(fields: Iterable[str]) -> list[str]:
    """The names in ``fields`` that no glossary entry explains (sorted, distinct)."""
    return sorted({str(f) for f in fields if explain(f) is None})
