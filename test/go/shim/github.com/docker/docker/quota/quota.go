// Package quota stands in for moby's quota package, which Debian's
// golang-github-docker-docker-dev leaves out although graphtest imports
// it: DriverTestSetQuota compares a driver's error with
// ErrQuotaNotSupported, which no device-mapper driver returns.
package quota

import "errors"

// ErrQuotaNotSupported is what a driver without project quotas would return.
var ErrQuotaNotSupported = errors.New("quota: not supported by this filesystem")
