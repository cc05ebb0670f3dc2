from shared.db.models import (
                              ApiToken,
                              Artifact,
                              AuditEntry,
                              Base,
                              CatalogEntry,
                              Checkpoint,
                              DispatchState,
                              Job,
                              JobLog,
                              JobMetric,
                              JobRank,
                              JobStatus,
                              JobTag,
                              Sweep,
                              User,
                              Worker,
)
from shared.db.notification_models import Notification, NotificationSettings
from shared.db.session import get_engine, session_scope

__all__ = ["ApiToken", "Artifact", "AuditEntry", "Base", "CatalogEntry", "Checkpoint", "DispatchState", "Job", "JobLog",
           "JobMetric", "JobRank", "JobStatus", "JobTag", "Notification", "NotificationSettings", "Sweep", "User",
           "Worker", "get_engine", "session_scope"]
