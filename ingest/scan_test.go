package ingest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

func TestValueEnd(t *testing.T) {
	tests := []struct {
		name string
		in   string
		at   int
		want int // index just past the value
	}{
		{name: "string", in: `"abc",1`, want: 5},
		{name: "empty string", in: `"",`, want: 2},
		{name: "escaped quote", in: `"a\"b"]`, want: 6},
		{name: "escaped backslash before quote", in: `"a\\"x`, want: 5},
		{name: "unicode escape", in: `"\u00e9\"" ,`, want: 10},
		{name: "multi-byte runes", in: `"héllo 😀"}`, want: len(`"héllo 😀"`)},
		{name: "object", in: `{"a":1} ,`, want: 7},
		{name: "object with braces in strings", in: `{"a":"}","b":"{{"}]`, want: 18},
		{name: "object with escaped quote and brace", in: `{"a":"\"}"}x`, want: 11},
		{name: "nested", in: `{"a":[1,{"b":[]}],"c":{}},2`, want: 25},
		{name: "array with brackets in strings", in: `["]","[",[]] `, want: 12},
		{name: "whitespace inside", in: "{ \"a\" :\n\t[ 1 ,\r\n 2 ] }\n", want: 22},
		{name: "integer", in: `123,`, want: 3},
		{name: "19-digit integer", in: `1234567890123456789}`, want: 19},
		{name: "float with exponent", in: `-1.5e+400]`, want: 9},
		{name: "true", in: `true}`, want: 4},
		{name: "false then space", in: `false `, want: 5},
		{name: "null then newline", in: "null\n", want: 4},
		{name: "number at end", in: `42`, want: 2},
		{name: "from the middle", in: `{"k": [1, 2] }`, at: 6, want: 12},
		{name: "past the end", in: `1`, at: 1, want: 1},
		{name: "truncated string", in: `"abc`, want: 4},
		{name: "truncated object", in: `{"a":[1,2`, want: 9},
		{name: "truncated escape", in: `"abc\`, want: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := valueEnd([]byte(tt.in), tt.at); got != tt.want {
				t.Fatalf("valueEnd(%q, %d) = %d; want %d", tt.in, tt.at, got, tt.want)
			}
		})
	}
}

func TestStringEnd(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int // index just past the string
	}{
		{name: "empty", in: `""`, want: 2},
		{name: "short", in: `"abc",1`, want: 5},
		{name: "quote at each place in a word", in: `"0123456"x`, want: 9},
		{name: "quote just past a word", in: `"01234567"x`, want: 10},
		{name: "long", in: `"` + strings.Repeat("x", 100) + `"}`, want: 102},
		{name: "escaped quote", in: `"a\"b"]`, want: 6},
		{name: "escaped backslash", in: `"a\\"x`, want: 5},
		{name: "escape across words", in: `"0123456\"89"x`, want: 13},
		{name: "escaped backslash across words", in: `"0123456\\"x`, want: 11},
		{name: "runs of backslashes", in: `"` + strings.Repeat(`\\`, 9) + `\""`, want: 22},
		{name: "high bytes", in: "\"\x80\xff\xa2\xdc\x22", want: 6},
		{name: "unclosed", in: `"abcdefghijklmnop`, want: 17},
		{name: "unclosed after escape", in: `"abcdefghijklmno\`, want: 17},
		{name: "escape of the last byte", in: `"abcdefghijklmn\"`, want: 17},
		{name: "from the middle", in: `{"k":"v"}`, want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := strings.IndexByte(tt.in, '"')
			if got := stringEnd([]byte(tt.in), at); got != tt.want {
				t.Fatalf("stringEnd(%q, %d) = %d; want %d", tt.in, at, got, tt.want)
			}
			if got := refStringEnd([]byte(tt.in), at); got != tt.want {
				t.Fatalf("refStringEnd(%q, %d) = %d; want %d", tt.in, at, got, tt.want)
			}
		})
	}

	// Every string of up to 12 bytes over an alphabet of the bytes that
	// matter (and one that has the SWAR borrow in mind: 0x01 above a
	// match), at every offset within a word.
	alphabet := []byte{'"', '\\', 'a', 0x01, 0xa2}
	var buf, tail []byte
	var walk func(n int)
	walk = func(n int) {
		for pad := 0; pad < 8; pad++ {
			b := append(append(append(buf[:0], strings.Repeat(" ", pad)...), '"'), tail...)
			if got, want := stringEnd(b, pad), refStringEnd(b, pad); got != want {
				t.Fatalf("stringEnd(%q, %d) = %d; want %d", b, pad, got, want)
			}
		}
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			tail = append(tail, c)
			walk(n - 1)
			tail = tail[:len(tail)-1]
		}
	}
	walk(7)
}

// refStringEnd is stringEnd one byte at a time.
func refStringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++
		}
	}
	return len(b)
}

func TestForEachMember(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // key=value, raw
		err  error
	}{
		{name: "empty", in: `{}`, want: nil},
		{name: "empty with space", in: " { \n } ", want: nil},
		{name: "compact", in: `{"a":1,"b":"x","c":null}`, want: []string{`a=1`, `b="x"`, `c=null`}},
		{
			name: "whitespace everywhere",
			in:   " {\n\t\"a\" : 1 ,\r\n \"b\"\t:\n[ 1 , 2 ] , \"c\" : { \"d\" : true } \n}\n",
			want: []string{`a=1`, `b=[ 1 , 2 ]`, `c={ "d" : true }`},
		},
		{
			name: "braces and quotes in strings",
			in:   `{"x":"}{","y":{"z":"]\"}"},"w":"\\"}`,
			want: []string{`x="}{"`, `y={"z":"]\"}"}`, `w="\\"`},
		},
		{name: "escaped key stays raw", in: `{"a\"b":"c","\u0074ype":1}`, want: []string{`a\"b="c"`, `\u0074ype=1`}},
		{name: "unicode", in: `{"héllo":"wörld 😀","ключ":[]}`, want: []string{`héllo="wörld 😀"`, `ключ=[]`}},
		{name: "numbers untouched", in: `{"big":1234567890123456789,"huge":1e400,"neg":-0.0}`, want: []string{`big=1234567890123456789`, `huge=1e400`, `neg=-0.0`}},
		{name: "array", in: `[1]`, err: errNotObject},
		{name: "string", in: `"{}"`, err: errNotObject},
		{name: "nothing", in: `  `, err: errNotObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := forEachMember([]byte(tt.in), func(k, v []byte) error {
				got = append(got, string(k)+"="+string(v))
				return nil
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v; want %v", err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q; want %q", got, tt.want)
			}
		})
	}

	t.Run("stops on the callback's error", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := forEachMember([]byte(`{"a":1,"b":2,"c":3}`), func(_, _ []byte) error {
			n++
			if n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 {
			t.Fatalf("got err %v after %d calls; want %v after 2", err, n, stop)
		}
	})
}

func TestScanEvent(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		at      int
		whole   bool
		want    []string // key=value, raw
		end     int      // when not whole; whole scans go to the end
		deepest int
		spaced  bool
		ok      bool
	}{
		{name: "empty", in: `{}`, whole: true, deepest: 1, ok: true},
		{name: "compact", in: `{"a":1,"b":"x","c":null}`, whole: true, want: []string{`a=1`, `b="x"`, `c=null`}, deepest: 1, ok: true},
		{
			name:  "whitespace everywhere",
			in:    " {\n\t\"a\" : 1 ,\r\n \"b\"\t:\n[ 1 , 2 ] , \"c\" : { \"d\" : true } \n}\n",
			whole: true, want: []string{`a=1`, `b=[ 1 , 2 ]`, `c={ "d" : true }`}, deepest: 2, spaced: true, ok: true,
		},
		{
			name:  "braces, colons and commas in strings",
			in:    `{"x":"}{,:","y":{"z":"]\"},"},"w":"\\"}`,
			whole: true, want: []string{`x="}{,:"`, `y={"z":"]\"},"}`, `w="\\"`}, deepest: 2, ok: true,
		},
		{name: "string values are not keys", in: `{"a":"b","c":"d"}`, whole: true, want: []string{`a="b"`, `c="d"`}, deepest: 1, ok: true},
		{name: "nested members are not members", in: `{"a":{"b":1,"c":[]},"e":3}`, whole: true, want: []string{`a={"b":1,"c":[]}`, `e=3`}, deepest: 3, ok: true},
		{name: "escaped key stays raw", in: `{"a\"b":"c","\u0074ype":1}`, whole: true, want: []string{`a\"b="c"`, `\u0074ype=1`}, deepest: 1, ok: true},
		{name: "array has no members", in: `[1,"a",{"b":2}]`, whole: true, deepest: 2, ok: true},
		{name: "stops after the object", in: `[{"a":1} , {"b":[2]}]`, at: 11, want: []string{`b=[2]`}, end: 20, deepest: 2, ok: true},
		{name: "whole goes to the end", in: `{"a":1} [[[ ]]]`, whole: true, want: []string{`a=1`}, deepest: 3, spaced: true, ok: true},
		{name: "too deep", in: `{"a":[[[1]]]}`, whole: true, deepest: 4, ok: false},
		{name: "too deep after the object", in: `{"a":1}[[[[`, whole: true, want: []string{`a=1`}, deepest: 4, ok: false},
		{name: "unclosed string", in: `{"a":"[[[[[`, whole: true, deepest: 1, ok: true},
		{name: "unclosed key", in: `{"`, whole: true, deepest: 1, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, members := scanEvent([]byte(tt.in), tt.at, 3, tt.whole, nil)
			var got []string
			for _, m := range members {
				got = append(got, string(m.key)+"="+string(m.val))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("members %q; want %q", got, tt.want)
			}
			end := tt.end
			if tt.whole {
				end = len(tt.in)
			}
			if sc.ok != tt.ok || sc.deepest != tt.deepest || sc.spaced != tt.spaced || (tt.ok && sc.end != end) {
				t.Fatalf("got %+v; want end %d, deepest %d, spaced %v, ok %v", sc, end, tt.deepest, tt.spaced, tt.ok)
			}
			if tt.whole {
				deepest, spaced, ok := structure([]byte(tt.in), 3)
				if sc.deepest != deepest || sc.spaced != spaced || sc.ok != ok {
					t.Fatalf("got %+v; structure says deepest %d, spaced %v, ok %v", sc, deepest, spaced, ok)
				}
			}
		})
	}
}

func TestForEachElement(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "empty", in: `[]`},
		{name: "empty with space", in: "\n[ \t ]\n"},
		{name: "scalars", in: `[1,"a",true,null]`, want: []string{`1`, `"a"`, `true`, `null`}},
		{
			name: "whitespace everywhere",
			in:   " [\n {\"a\" : \"]\" } ,\r\n[ 1 ,2 ]\t, \"x\\\"y\" \n] ",
			want: []string{`{"a" : "]" }`, `[ 1 ,2 ]`, `"x\"y"`},
		},
		{name: "objects with brackets in strings", in: `[{"a":"[,]"},{"b":"}"}]`, want: []string{`{"a":"[,]"}`, `{"b":"}"}`}},
		{name: "object", in: `{}`, wantErr: true},
		{name: "nothing", in: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := forEachElement([]byte(tt.in), func(i int, e []byte) error {
				if i != len(got) {
					t.Fatalf("element %q has index %d; want %d", e, i, len(got))
				}
				got = append(got, string(e))
				return nil
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v; want error %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestAppendCompact(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "already compact", in: `{"a":[1,2],"b":"c"}`, want: `{"a":[1,2],"b":"c"}`},
		{name: "whitespace everywhere", in: " {\n\t\"a\" : [ 1 ,\r\n 2 ] , \"b\" :\"c\" }\n", want: `{"a":[1,2],"b":"c"}`},
		{name: "space inside strings kept", in: `{ "a b" : "c  d\t" }`, want: `{"a b":"c  d\t"}`},
		{name: "escaped quotes", in: `{ "a" : "x \" y" , "b" : "\\" }`, want: `{"a":"x \" y","b":"\\"}`},
		{name: "escaped newline kept as escape", in: "{ \"a\" : \"line\\nnext\" }", want: `{"a":"line\nnext"}`},
		{name: "unicode", in: `[ "é" , "😀" , "\u00e9" ]`, want: `["é","😀","\u00e9"]`},
		{name: "numbers untouched", in: `[ 1234567890123456789 , 1e400 , -0.10 ]`, want: `[1234567890123456789,1e400,-0.10]`},
		{name: "scalar", in: ` true `, want: `true`},
		{name: "empty", in: ``, want: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendCompact([]byte("prefix:"), []byte(tt.in))
			if want := "prefix:" + tt.want; string(got) != want {
				t.Fatalf("got %q; want %q", got, want)
			}
		})
	}
}

func TestNestingDepth(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		limit  int
		want   int
		wantOK bool
	}{
		{name: "scalar", in: `1`, limit: 3, want: 0, wantOK: true},
		{name: "object", in: `{}`, limit: 3, want: 1, wantOK: true},
		{name: "siblings do not add", in: `[[],[],{}]`, limit: 3, want: 2, wantOK: true},
		{name: "at the limit", in: `[[[]]]`, limit: 3, want: 3, wantOK: true},
		{name: "over the limit", in: `[[[[]]]]`, limit: 3, want: 4, wantOK: false},
		{name: "brackets in strings ignored", in: `{"a":"[[[[{{{{"}`, limit: 1, want: 1, wantOK: true},
		{name: "escaped quote in string", in: `{"a":"\"[[[["}`, limit: 1, want: 1, wantOK: true},
		{name: "escaped backslash ends string", in: `["\\",[[]]]`, limit: 3, want: 3, wantOK: true},
		{name: "whitespace", in: "[ \n[ {\t} ] ]", limit: 3, want: 3, wantOK: true},
		{name: "unbalanced", in: strings.Repeat("[", 10), limit: 100, want: 10, wantOK: true},
		{name: "gives up early", in: strings.Repeat("[", 100_000), limit: 5, want: 6, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := nestingDepth([]byte(tt.in), tt.limit)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("nestingDepth(%q, %d) = %d, %v; want %d, %v", tt.in, tt.limit, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestJSONString(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      string
		wantOK    bool
		wantAlias bool // no escapes: the result shares raw's bytes
	}{
		{name: "plain", in: `"abc"`, want: "abc", wantOK: true, wantAlias: true},
		{name: "empty", in: `""`, want: "", wantOK: true},
		{name: "multi-byte", in: `"héllo 😀"`, want: "héllo 😀", wantOK: true, wantAlias: true},
		{name: "escaped quote", in: `"a\"b"`, want: `a"b`, wantOK: true},
		{name: "escaped backslash", in: `"a\\b"`, want: `a\b`, wantOK: true},
		{name: "control escapes", in: `"\n\t\r\b\f\/"`, want: "\n\t\r\b\f/", wantOK: true},
		{name: "unicode escape", in: `"\u00e9t\u00e9"`, want: "été", wantOK: true},
		{name: "surrogate pair", in: `"\ud83d\ude00"`, want: "😀", wantOK: true},
		{name: "braces inside", in: `"{\"a\":[1]}"`, want: `{"a":[1]}`, wantOK: true},
		{name: "number", in: `123`},
		{name: "null", in: `null`},
		{name: "object", in: `{"a":"b"}`},
		{name: "lone quote", in: `"`},
		{name: "nothing", in: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.in)
			got, ok := jsonString(raw)
			if ok != tt.wantOK || string(got) != tt.want {
				t.Fatalf("jsonString(%s) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
			if tt.wantAlias && unsafe.SliceData(got) != &raw[1] {
				t.Fatalf("jsonString(%s) copied; want it to alias its input", tt.in)
			}
		})
	}
}

func TestAppendQuoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"203.0.113.7", `"203.0.113.7"`},
		{"", `""`},
		{`a"b\c`, `"a\"b\\c"`},
		{"tab\there", `"tab\there"`},
		{"é", `"é"`},
	}
	for _, tt := range tests {
		if got := appendQuoted([]byte("x="), tt.in); string(got) != "x="+tt.want {
			t.Errorf("appendQuoted(%q) = %s; want x=%s", tt.in, got, tt.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"x"`, "a string"}, {`{}`, "an object"}, {`[]`, "an array"}, {`true`, "a boolean"},
		{`false`, "a boolean"}, {`null`, "null"}, {`-1`, "a number"}, {``, "nothing"},
	}
	for _, tt := range tests {
		if got := kindOf([]byte(tt.in)); got != tt.want {
			t.Errorf("kindOf(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
