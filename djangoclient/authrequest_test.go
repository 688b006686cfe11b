package djangoclient

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestAuthRequestJSON: exactly one of "password" and "public_key" is sent (DESIGN.md §10),
// and an empty password is still a password.
func TestAuthRequestJSON(t *testing.T) {
	base := map[string]any{"username": "alice", "client_ip": "192.0.2.10", "protocol": "sftp", "session": "s-1"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{k: v}
		for bk, bv := range base {
			m[bk] = bv
		}
		return m
	}
	r := AuthRequest{Username: "alice", ClientIP: "192.0.2.10", Protocol: "sftp", Session: "s-1"}
	keyReq := r
	keyReq.PublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDLJqFz6jTpJoj75vQx33dXQevfztC785C/kjOCauAB+"
	keyReq.Password = "ignored"
	pwReq := r
	pwReq.Password = "pässword"
	tests := []struct {
		name string
		req  AuthRequest
		want map[string]any
	}{
		{"password", pwReq, with("password", "pässword")},
		{"empty password", r, with("password", "")},
		{"public key", keyReq, with("public_key", keyReq.PublicKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := json.Marshal(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("JSON = %s, want %v", body, tt.want)
			}
		})
	}
}
