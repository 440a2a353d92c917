#!/bin/sh
# Prints the bucket's lifecycle configuration (S3 JSON, which `mc ilm import` and
# `aws s3api put-bucket-lifecycle-configuration --lifecycle-configuration file://…` both read):
# versions that are no longer current (an object overwritten or deleted: customers' photos and
# images included) expire BUCKET_NONCURRENT_DAYS after they stopped being current, and delete
# markers left with no version behind them go too. Current objects are never touched here; the
# services delete what they no longer keep (docs/operations.md, "Data map").
set -eu
days="${BUCKET_NONCURRENT_DAYS:-30}"
case "$days" in
  '' | *[!0-9]* | 0)
    echo "BUCKET_NONCURRENT_DAYS must be a whole number of days, at least 1 (got '$days')" >&2
    exit 64
    ;;
esac
cat <<JSON
{
  "Rules": [
    {
      "ID": "atelier-expire-noncurrent-versions",
      "Status": "Enabled",
      "Filter": { "Prefix": "" },
      "NoncurrentVersionExpiration": { "NoncurrentDays": $days },
      "Expiration": { "ExpiredObjectDeleteMarker": true }
    }
  ]
}
JSON
