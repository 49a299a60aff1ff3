// Command custom-cli is a loom binary with a task of its own: the whole
// loom command set (cli.Main) over the standard tasks plus "greet".
//
//	go build -o greeter ./examples/custom-cli
//	./greeter run examples/custom-cli/_workflows/greet.yaml --input '{"name": "Ada"}'
//
// Its workflow lives in _workflows/, outside the stock examples catalog:
// a folder starting with _ is skipped by directory loads.
package main
