from shared.db.models import Artifact, ApiToken, Base, Job, JobLog, JobMetric, JobRank, JobStatus, User, Worker
from shared.db.session import dispose_engines, get_engine, session_scope

__all__ = ["ApiToken", "Artifact", "Base", "Job", "JobLog", "JobMetric", "JobRank", "JobStatus", "User", "Worker",
           "dispose_engines", "get_engine", "session_scope"]
