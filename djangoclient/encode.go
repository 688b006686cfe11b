package djangoclient

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// appendEvent appends e's JSON, byte for byte what the spool's reader has always sent Django
// (canonicalLine: encoding/json's Marshal of the event decoded from its first encoding), to
// dst. It is that encoding written out by hand because every FTP session emits four events
// on its login path, where json.Marshal's reflection was ~3.5 µs an event. The one place it
// differs from json.Marshal(e) is a string that is not valid UTF-8: each bad byte becomes
// U+FFFD, written as is (Marshal writes the escape \ufffd, which decodes to the same string).
// Field order and names follow Event's tags; FuzzAppendEvent holds it to encoding/json.
func appendEvent(dst []byte, e *Event) ([]byte, error) {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, e.Type)
	dst = append(dst, `,"time":"`...)
	dst, err := appendTime(dst, e)
	if err != nil {
		return nil, err
	}
	dst = append(dst, `","session":`...)
	dst = appendJSONString(dst, e.Session)
	dst = append(dst, `,"username":`...)
	dst = appendJSONStringPtr(dst, e.Username)
	dst = append(dst, `,"client_ip":`...)
	dst = appendJSONString(dst, e.ClientIP)
	dst = append(dst, `,"path":`...)
	dst = appendJSONStringPtr(dst, e.Path)
	dst = append(dst, `,"to_path":`...)
	dst = appendJSONStringPtr(dst, e.ToPath)
	dst = append(dst, `,"bytes":`...)
	dst = appendJSONIntPtr(dst, e.Bytes)
	dst = append(dst, `,"duration_ms":`...)
	dst = appendJSONIntPtr(dst, e.DurationMS)
	if e.Protocol != "" {
		dst = append(dst, `,"protocol":`...)
		dst = appendJSONString(dst, e.Protocol)
	}
	return append(dst, '}'), nil
}

// appendTime appends e.Time in RFC 3339 as Time.MarshalJSON does, with its range checks; a
// zone under a minute east or west of UTC, which that writes "+00:00", is "Z", as the time
// comes back from a decode (with an offset of 0) and a second encoding.
func appendTime(dst []byte, e *Event) ([]byte, error) {
	dst, err := e.Time.AppendText(dst)
	if err != nil {
		return nil, err
	}
	if n := len(dst) - len("+00:00"); bytes.HasSuffix(dst, []byte("+00:00")) || bytes.HasSuffix(dst, []byte("-00:00")) {
		dst = append(dst[:n], 'Z')
	}
	return dst, nil
}

func appendJSONStringPtr(dst []byte, s *string) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, *s)
}

func appendJSONIntPtr(dst []byte, n *int64) []byte {
	if n == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendInt(dst, *n, 10)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with its default HTML escaping: '"' and
// '\\' escaped, control characters as \b \f \n \r \t or \u00XX, '<' '>' '&' as \u003c
// \u003e \u0026, U+2028 and U+2029 escaped; except that a byte that is not UTF-8 becomes
// U+FFFD as is, as it comes out of a decode and a second encoding.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
