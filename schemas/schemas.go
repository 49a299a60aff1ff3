package schemas

import _ "embed"

// Workflow is workflow.schema.json: the JSON Schema (draft-07) of one
// workflow document. Editors use it through a
// "# yaml-language-server: $schema=…" line; package definition validates
// every document against it before checking meaning.
//
//go:embed workflow.schema.json
var Workflow []byte

// WorkflowID is the schema's $id.
const WorkflowID = "https://loomwork.dev/schemas/workflow.schema.json"
