from shared.db.models import Artifact, ApiToken, AuditEntry, Base, Job, JobLog, JobMetric, JobRank, JobStatus, User, Worker
from shared.db.session import dispose_engines, get_engine, session_scope

__all__ = ["ApiToken", "Artifact", "AuditEntry", "Base", "Job", "JobLog", "JobMetric", "JobRank", "JobStatus", "User", "Worker",
           "dispose_engines", "get_engine", "session_scope"]
