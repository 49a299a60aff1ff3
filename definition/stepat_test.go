package definition

import "testing"

func TestStepAt(t *testing.T) {
	cat, err := Parse("w.yaml", []byte(`
name: w
steps:
  - id: first
    pause: start
  - id: m
    map:
      items: ${ [1] }
      steps:
        - id: ask
          pause: ask
  - for: {items: "${ [1] }", steps: [{pause: again}]}
  - id: both
    parallel:
      a: [{pause: pa}]
      b: [{id: inner, try: [{pause: pt}], catch: {steps: [{pause: pc}]}, finally: [{pause: pf}]}]
  - id: route
    switch:
      - when: ${ true }
        steps: [{pause: pw}]
      - default: [{pause: pd}]
`))
	if err != nil {
		t.Fatal(err)
	}
	wf := cat.Workflow("w")
	for path, want := range map[string]string{
		"first":                   "start",
		"m[0]/ask":                "ask",
		"m[12]@3/ask":             "ask",
		"#2[0]/#0":                "again",
		"both/a/#0":               "pa",
		"both/b/inner/try/#0":     "pt",
		"both/b/inner/catch/#0":   "pc",
		"both/b/inner/finally/#0": "pf",
		"route/when[0]/#0":        "pw",
		"route/default/#0":        "pd",
	} {
		st := wf.StepAt(path)
		if st == nil || st.Pause != want {
			t.Errorf("StepAt(%q) = %+v, want the pause %s", path, st, want)
		}
	}
	for _, path := range []string{"", "nope", "m/ask", "m[x]/ask", "m[0]@/ask", "both/c/#0", "first/#compensate", "#output", "route/when[5]/#0", "m[0]/ask/more"} {
		if st := wf.StepAt(path); st != nil {
			t.Errorf("StepAt(%q) = %s step, want nil", path, st.Kind)
		}
	}
}
