#!/bin/sh
# One-shot MinIO set-up for bosun (the compose service `minio-init`, image minio/mc):
# the bucket, a policy that reaches only that bucket, and the bosun user holding it. Idempotent:
# every run leaves the same state, so it runs on every `docker-compose up`.
set -eu

: "${MINIO_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${BOSUN_S3_BUCKET:?}" "${BOSUN_S3_ACCESS_KEY:?}" "${BOSUN_S3_SECRET_KEY:?}"

policy_name="bosun-${BOSUN_S3_BUCKET}-rw"
policy_file="$(mktemp)"
trap 'rm -f "$policy_file"' EXIT

mc alias set local "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/${BOSUN_S3_BUCKET}"

cat >"$policy_file" <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow",
     "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
     "Resource": ["arn:aws:s3:::${BOSUN_S3_BUCKET}"]},
    {"Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::${BOSUN_S3_BUCKET}/*"]}
  ]
}
POLICY
mc admin policy create local "$policy_name" "$policy_file" >/dev/null
mc admin user add local "$BOSUN_S3_ACCESS_KEY" "$BOSUN_S3_SECRET_KEY" >/dev/null
if ! mc admin user info local "$BOSUN_S3_ACCESS_KEY" | grep -q "$policy_name"; then
    mc admin policy attach local "$policy_name" --user "$BOSUN_S3_ACCESS_KEY" >/dev/null
fi
echo "bucket ${BOSUN_S3_BUCKET} ready for ${BOSUN_S3_ACCESS_KEY}"
