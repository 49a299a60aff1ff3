// Package schemas holds the JSON Schema of Loom's workflow language,
// embedded so the binary can validate definitions and print the schema
// (`loom schema`) for editors that speak yaml-language-server.
package schemas
