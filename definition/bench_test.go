package definition

import (
	"fmt"
	"strings"
	"testing"
)

// thousandSteps generates a workflow of n steps mixing tasks, sets and
// maps whose expressions refer to earlier steps.
func thousandSteps(n int) []byte {
	var b strings.Builder
	b.WriteString("name: big\ninput: {type: object}\nsteps:\n")
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  - id: s%d\n    task: fetch\n    with: {id: \"${ input.id }\", n: %d}\n    retry: {max_attempts: 3, delay: 1s}\n", i, i)
		case 1:
			fmt.Fprintf(&b, "  - id: s%d\n    task: transform\n    with: \"${ steps.s%d.output.value + %d }\"\n    timeout: 30s\n", i, i-1, i)
		case 2:
			fmt.Fprintf(&b, "  - id: s%d\n    if: \"${ steps.s%d.output != nil }\"\n    set: {v%d: \"item ${ steps.s%d.output } at ${ now() }\"}\n", i, i-2, i, i-1)
		case 3:
			fmt.Fprintf(&b, "  - id: s%d\n    map:\n      items: \"${ steps.s%d.output.list }\"\n      task: each\n      with: {x: \"${ item.x * %d }\", from: \"${ steps.s%d.output }\"}\n", i, i-3, i, i-2)
		}
	}
	b.WriteString("output: \"${ steps.s" + fmt.Sprint(n-1) + ".output }\"\n")
	return []byte(b.String())
}

func BenchmarkLoad1000Steps(b *testing.B) {
	src := thousandSteps(1000)
	if _, err := Parse("big.yaml", src); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse("big.yaml", src); err != nil {
			b.Fatal(err)
		}
	}
}
