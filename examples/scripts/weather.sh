#!/bin/sh
# A stand-in for a flaky weather service, used by examples/retry_fallback.yaml.
# Usage: sh examples/scripts/weather.sh CITY
# It knows a few cities; for any other it fails with the typed error
# Unavailable, using exec's JSON error protocol: print
# {"error": {"type": T, "message": M}} on stdout and exit non-zero.
case "$1" in
Oslo) echo '{"city": "Oslo", "forecast": "rain", "source": "service"}' ;;
Lisbon) echo '{"city": "Lisbon", "forecast": "sun", "source": "service"}' ;;
*)
	echo "{\"error\": {\"type\": \"Unavailable\", \"message\": \"the weather service has no forecast for $1\"}}"
	exit 1
	;;
esac
