import os

from celery import Celery
from celery.signals import worker_process_init
from threadpoolctl import threadpool_limits

from apps.core.broker import register as register_sqlite_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_web.settings")
register_sqlite_transport()

app = Celery("mlops_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _limit_native_threads(**kwargs):
    """Each pool process gets WORKER_THREADS OpenMP/BLAS threads (default 1).

    With one pool process per core, letting every process start a thread per core
    oversubscribes the CPUs: measured here, a gradient-boosting fit ran 10x slower inside a
    worker than alone (bench/training_job.py). Set WORKER_THREADS when running fewer
    pool processes than cores.
    """
    threads = int(os.environ.get("WORKER_THREADS", "1") or 1)
    threadpool_limits(limits=max(1, threads))
    os.environ["OMP_NUM_THREADS"] = str(max(1, threads))
