package interpreter

import "github.com/loomwork/loom/definition"

// Load loads the workflow definitions at path (a file or a directory) and
// checks them against tasks: an unknown task name, or a literal input its
// task's schema refuses, is a problem at its file:line:col, as `loom
// validate` reports it. It is the way to load a catalog for an Engine over
// tasks; definition.Load without definition.WithTasks checks no task.
// opts are further definition options (e.g. definition.WithSecrets).
func Load(path string, tasks Tasks, opts ...definition.Option) (*definition.Catalog, error) {
	return definition.Load(path, append([]definition.Option{definition.WithTasks(tasks)}, opts...)...)
}
