"""Prometheus metric definitions shared by the API and the workers.

Names follow Prometheus conventions: counters end in `_total`, durations in `_seconds`. No label
ever holds a job id (unbounded cardinality); job type, status, worker and GPU index are bounded.
Workers run jobs in short-lived child processes, so they use prometheus_client's multiprocess
mode (PROMETHEUS_MULTIPROC_DIR), set up by the worker before any child starts.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Queue waits and run times range from seconds to days: hour-scale buckets.
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600,
                    12 * 3600, 24 * 3600, 48 * 3600, 96 * 3600, 7 * 24 * 3600)

JOBS_SUBMITTED = Counter("bosun_jobs_submitted_total", "Jobs accepted by the API", ["type"])
JOBS_FINISHED = Counter("bosun_jobs_finished_total", "Jobs that reached a final state", ["type", "status"])
QUEUE_WAIT = Histogram("bosun_job_queue_wait_seconds", "Time from submission to start of a job's attempt",
                       ["type"], buckets=DURATION_BUCKETS)
RUN_TIME = Histogram("bosun_job_run_seconds", "Time from start to final state of a job's attempt",
                     ["type", "status"], buckets=DURATION_BUCKETS)
JOBS_REQUEUED = Counter("bosun_jobs_requeued_total", "Jobs re-queued by the lease reaper after their worker vanished",
                        ["type"])
WORKER_HEARTBEAT = Gauge("bosun_worker_heartbeat_timestamp_seconds", "Unix time of the worker's last heartbeat",
                         ["worker"], multiprocess_mode="max")
# Set by a job's child process and outlived by its file: the value written last is the current one
# ("max" would keep a dead child's 1, or an earlier job's higher loss, for the worker's lifetime).
WORKER_BUSY = Gauge("bosun_worker_busy", "1 while the worker runs a job", ["worker"], multiprocess_mode="mostrecent")
TRAIN_IMAGES_PER_SECOND = Gauge("bosun_train_images_per_second", "Training throughput of the latest training job",
                                ["type", "worker"], multiprocess_mode="mostrecent")
TRAIN_LOSS = Gauge("bosun_train_loss", "Latest training loss of the latest training job", ["type", "worker"],
                   multiprocess_mode="mostrecent")
LANDSCAPE_POINTS = Counter("bosun_landscape_points_total", "Loss-landscape grid points computed", ["worker"])
LANDSCAPE_TILES = Counter("bosun_landscape_tiles_total", "Loss-landscape tiles finished", ["worker"])
GPU_UTILIZATION = Gauge("bosun_gpu_utilization_ratio", "GPU utilisation (NVML), 0..1", ["worker", "gpu"],
                        multiprocess_mode="max")
GPU_MEMORY_USED = Gauge("bosun_gpu_memory_used_bytes", "GPU memory in use (NVML)", ["worker", "gpu"],
                        multiprocess_mode="max")
GPU_MEMORY_TOTAL = Gauge("bosun_gpu_memory_total_bytes", "GPU memory size (NVML)", ["worker", "gpu"],
                         multiprocess_mode="max")
OBJECT_STORE_ERRORS = Counter("bosun_object_store_errors_total", "Failed object store operations", ["op"])
NOTIFICATIONS = Counter("bosun_notifications_total", "Notification deliveries tried, by channel and outcome "
                        "(delivered, retry, failed)", ["channel", "outcome"])
HTTP_REQUESTS = Counter("bosun_http_requests_total", "HTTP requests served by the API", ["method", "route", "status"])
HTTP_DURATION = Histogram("bosun_http_request_duration_seconds", "HTTP request latency", ["method", "route"])

# Gauges computed from the database at scrape time by the API (see api/collectors.py):
#   bosun_jobs{type,status}              jobs in each state now
#   bosun_queue_oldest_wait_seconds{queue}  age of the oldest queued, dispatchable job
#   bosun_workers{state}                 workers alive by state (idle, busy, draining)
#   bosun_gpu_seconds_total{user}        GPU-seconds of each user's jobs (shared.dispatch.usage.gpu_seconds_total)
#   bosun_store_bytes{user}              bytes of each user's artifacts and checkpoints (shared.disk_usage)
