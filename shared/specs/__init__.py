"""Job specs (pydantic only: the API validates submissions without torch).

Which spec model belongs to which job type is declared once, in `shared.job_types`.
"""
