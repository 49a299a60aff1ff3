package definition

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
)

func TestWriteOnly(t *testing.T) {
	cat, err := Parse("wf.yaml", []byte(`
name: wf
input:
  type: object
  properties:
    user: {type: string}
    token: {type: string, writeOnly: true}
    card:
      type: object
      properties:
        number: {type: string, writeOnly: true}
        exp: {type: string}
    keys: {type: array, items: {type: string, writeOnly: true}}
    pin: {type: integer, writeOnly: true}
steps:
  - return: ok
`))
	if err != nil {
		t.Fatal(err)
	}
	wf := cat.Workflow("wf")
	if !wf.HasWriteOnlyInput() {
		t.Fatal("no write-only input found")
	}
	if got, want := wf.WriteOnlyFields(), []string{"card.number", "keys.*", "pin", "token"}; !reflect.DeepEqual(got, want) {
		t.Errorf("WriteOnlyFields() = %v, want %v", got, want)
	}
	var in any
	_ = json.Unmarshal([]byte(`{"user":"bob","token":"t0k","card":{"number":"4111","exp":"12/30"},"keys":["k1","k2"],"pin":1234}`), &in)
	vals := wf.WriteOnlyValues(in)
	sort.Strings(vals)
	if want := []string{"1234", "4111", "k1", "k2", "t0k"}; !reflect.DeepEqual(vals, want) {
		t.Errorf("WriteOnlyValues = %v, want %v", vals, want)
	}
	before, _ := json.Marshal(in)
	b, _ := json.Marshal(wf.MaskInput(in))
	if want := `{"card":{"exp":"12/30","number":"***"},"keys":["***","***"],"pin":"***","token":"***","user":"bob"}`; string(b) != want {
		t.Errorf("MaskInput = %s\nwant %s", b, want)
	}
	if after, _ := json.Marshal(in); string(after) != string(before) {
		t.Error("MaskInput changed its argument")
	}
	plain, _ := Parse("p.yaml", []byte("name: p\nsteps: [{return: 1}]\n"))
	if plain.Workflow("p").HasWriteOnlyInput() || plain.Workflow("p").MaskInput("x") != "x" {
		t.Error("a workflow without input schema has write-only input")
	}
}
