package training

import (
	"testing"

	"github.com/cifarnet-go/cifarnet/trainer/recipes"
)

// FuzzParseRecipe: any bytes given as a recipe file decode and validate
// to an error or a recipe that validates again the same way, without
// panicking.
func FuzzParseRecipe(f *testing.F) {
	for _, name := range []string{"fast", "keras-reference", "pytorch-reference"} {
		data, err := recipes.Get(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"name":"x","preset":"keras-cnn","epochs":1,"batch":8}`))
	f.Add([]byte(`{"name":"x","spec":{"name":"s","input":{"c":3,"h":32,"w":32},"layers":[]}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecipe(data)
		if err != nil {
			return
		}
		err = r.Validate()
		if again := r.Validate(); (err == nil) != (again == nil) {
			t.Fatalf("validation changed its mind: %v, then %v", err, again)
		}
		if err == nil {
			if _, err := r.Architecture(); err != nil {
				t.Fatalf("a valid recipe without a spec: %v", err)
			}
		}
	})
}
