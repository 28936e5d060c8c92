#!/bin/sh
# Start Alertmanager with the webhook URL from the environment (it cannot expand variables).
set -eu
: "${ALERTMANAGER_WEBHOOK_URL:?set ALERTMANAGER_WEBHOOK_URL to the URL that receives alerts}"
# awk substitutes the literal placeholder: no escaping of "&", "/" or "|" in the URL.
awk '{
  placeholder = "${ALERTMANAGER_WEBHOOK_URL}"
  i = index($0, placeholder)
  if (i) $0 = substr($0, 1, i - 1) ENVIRON["ALERTMANAGER_WEBHOOK_URL"] substr($0, i + length(placeholder))
  print
}' /etc/tuneloop/alertmanager/alertmanager.yml > /tmp/alertmanager.yml
exec /bin/alertmanager --config.file=/tmp/alertmanager.yml --storage.path=/alertmanager "$@"
