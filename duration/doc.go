// Package duration is the one grammar of a duration in Loom: workflow
// timeouts, sleeps and retry delays, the http task's timeout, and the
// CLI's --since and prune ages all read durations with Parse, and every
// schema that checks one uses Pattern.
package duration
