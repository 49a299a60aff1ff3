package definition_test

import (
	"fmt"

	"github.com/loomwork/loom/definition"
)

func ExampleLoad() {
	cat, err := definition.Load("testdata/valid")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range cat.Names() {
		wf := cat.Workflow(name)
		fmt.Println(name, wf.Pos, len(wf.Steps), "step(s)")
	}
	// Output:
	// greet testdata/valid/greet.yaml:2:1 1 step(s)
	// greet_all testdata/valid/greet.yaml:10:1 1 step(s)
}

func ExampleParse() {
	src := []byte(`name: order
steps:
  - id: fetch
    task: fetch_order
    wiht: {id: "${ input.id }"}
  - task: notify
    with: "${ steps.fecth.output }"
`)
	_, err := definition.Parse("order.yaml", src)
	fmt.Println(err)
	// Output:
	// order.yaml:5:5: unknown key "wiht" in a task step; did you mean "with"?
	// order.yaml:7:21: unknown step "fecth"; did you mean "fetch"?
}

func ExampleValue_Eval() {
	cat, _ := definition.Parse("hi.yaml", []byte(`name: hi
steps:
  - task: echo
    with: {greeting: "hello, ${ upper(input.who) }", twice: "${ input.n * 2 }"}
`))
	with := cat.Workflow("hi").Steps[0].With
	v, err := with.Eval(map[string]any{"input": map[string]any{"who": "ada", "n": 21}})
	fmt.Println(v, err)
	// Output: map[greeting:hello, ADA twice:42] <nil>
}
