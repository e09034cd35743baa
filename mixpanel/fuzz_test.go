package mixpanel

import (
	"bytes"
	"testing"

	"github.com/goccy/go-json"

	"trove/internal/compattest"
)

// FuzzServe feeds arbitrary data= values and bodies to /track, /engage and
// /import: no panic, and either an error the client caused or a
// well-formed answer.
func FuzzServe(f *testing.F) {
	paths := []string{"/track", "/engage", "/import"}
	compattest.Fuzz(f, NewHandler(compattest.NewCore(f)).Serve, []uint8{0, 1}, []string{
		`{"event":"a","properties":{"token":"` + compattest.App + `","distinct_id":"u","time":1790000000,"$insert_id":"x"}}`,
		`[{"event":"a","properties":{"token":"alias-key","distinct_id":1,"time":"bad"}},{"event":"b"},7]`,
		`{"$token":"` + compattest.Token + `","$distinct_id":"u","$set":{"$email":"a@b.co"},"$add":{"n":1},"$union":{"t":["a"]},"$remove":{"t":"a"},"$unset":["p"],"$set_once":{"x":1},"$delete":""}`,
		`eyJldmVudCI6ImEiLCJwcm9wZXJ0aWVzIjp7InRva2VuIjoieXoxSm4tMHBTbmVrZzU4ZXRFUU80QSIsImRpc3RpbmN0X2lkIjoidSJ9fQ==`,
		``, `{`, `!!!`,
	}, func(which uint8, data string) []compattest.Request {
		p := paths[int(which)%len(paths)]
		return []compattest.Request{
			{URI: p, ContentType: "application/x-www-form-urlencoded", Body: []byte("data=" + urlEscape(data))},
			{URI: p + "?verbose=1", ContentType: "application/json", Body: []byte(data)},
		}
	})
}

// urlEscape escapes s for a form value.
func urlEscape(s string) string {
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + string("0123456789ABCDEF"[c>>4]) + string("0123456789ABCDEF"[c&15]))
		}
	}
	return b.String()
}

// TestImportAnswer: /import's JSON answer names the failed records.
func TestImportAnswer(t *testing.T) {
	h := NewHandler(compattest.NewCore(t))
	body := `[{"event":"a","properties":{"token":"` + compattest.App + `","distinct_id":"u","$insert_id":"i1"}},{"event":"b","properties":{"token":"` + compattest.App + `"}}]`
	ctx, err := compattest.Serve(h.Serve, "POST", "/import", "application/json", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Code     int `json:"code"`
		Imported int `json:"num_records_imported"`
		Failed   []struct {
			Index int    `json:"index"`
			Field string `json:"field"`
		} `json:"failed_records"`
	}
	json.Unmarshal(ctx.Response.Body(), &got)
	if ctx.Response.StatusCode() != 400 || got.Code != 400 || got.Imported != 1 || len(got.Failed) != 1 || got.Failed[0].Index != 1 || got.Failed[0].Field != "properties.distinct_id" {
		t.Errorf("got %d %s; want 400, 1 imported, record 1 failed on properties.distinct_id", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}
