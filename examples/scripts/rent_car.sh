#!/bin/sh
# A stand-in for a car rental service, used by examples/saga.yaml.
# Usage: sh examples/scripts/rent_car.sh TRAVELLER CITY
# Porto has cars; anywhere else fails with the typed error NoCarsLeft
# (exec's JSON error protocol: {"error": {...}} on stdout, non-zero exit).
if [ "$2" = Porto ]; then
	echo "{\"booking\": \"CR-$1-$2\"}"
	exit 0
fi
echo "{\"error\": {\"type\": \"NoCarsLeft\", \"message\": \"no car is left in $2\", \"data\": {\"city\": \"$2\"}}}"
exit 1
