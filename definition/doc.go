// Package definition turns Loom workflow files into a checked Catalog of
// typed Workflows: YAML parsed with positions, validated against the
// embedded JSON Schema and for meaning, every expression compiled.
//
// Every problem of a load is reported at once, as an ErrorList whose lines
// read "file:line:col: message". Expressions (strings holding "${ … }")
// compile with expr-lang against the names in scope at their step and
// evaluate at run time with Expr.Eval and Value.Eval, within an operation
// budget, never panicking.
package definition
