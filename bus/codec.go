package bus

import (
	"encoding/json"

	fastjson "github.com/segmentio/encoding/json"
)

// Marshal encodes a record's value: the JSON encoding/json writes (the same
// bytes), about twice as fast. The records of every hop are JSON; this is
// where their encoding is chosen.
func Marshal(v any) ([]byte, error) { return fastjson.Marshal(v) }

// Unmarshal decodes a record's value as encoding/json does (the same value,
// an error for the same inputs), about twice as fast; a refused value is
// decoded again by encoding/json so that the error, which may end in a dead
// letter, reads as usual.
func Unmarshal(data []byte, v any) error {
	if err := fastjson.Unmarshal(data, v); err != nil {
		return json.Unmarshal(data, v)
	}
	return nil
}
