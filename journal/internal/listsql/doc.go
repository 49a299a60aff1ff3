// Package listsql is the part of List's SQL the journal backends share:
// the ORDER BY of each journal.Order with its cursor comparison, and the
// state condition written so that the index of paused records applies.
package listsql
