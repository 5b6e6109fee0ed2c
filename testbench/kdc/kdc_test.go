package kdc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// start starts a KDC for a test; without the MIT tools the test skips, as
// the unit suite's other tool-bound tests do (make deps installs them).
func start(t *testing.T) *KDC {
	t.Helper()
	k, err := Start(context.Background(), Options{Dir: t.TempDir()})
	if errors.Is(err, ErrMissingTool) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

func TestGokrb5LogsInWithAKeytabAndWithAPassword(t *testing.T) {
	k := start(t)
	cfg, err := config.Load(k.Krb5Conf())
	if err != nil {
		t.Fatalf("gokrb5 cannot read the krb5.conf: %v", err)
	}
	path, err := k.AddKeytabPrincipal("alice")
	if err != nil {
		t.Fatal(err)
	}
	kt, err := keytab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.NewWithKeytab("alice", k.Realm(), kt, cfg, client.DisablePAFXFAST(true)).Login(); err != nil {
		t.Errorf("keytab login: %v", err)
	}
	if err := k.AddPasswordPrincipal("carol", "carol-secret"); err != nil {
		t.Fatal(err)
	}
	if err := client.NewWithPassword("carol", k.Realm(), "carol-secret", cfg, client.DisablePAFXFAST(true)).Login(); err != nil {
		t.Errorf("password login: %v", err)
	}
	// The password's keys exported: both still work.
	path, err = k.ExportKeytab("carol")
	if err != nil {
		t.Fatal(err)
	}
	if kt, err = keytab.Load(path); err != nil {
		t.Fatal(err)
	}
	if err := client.NewWithKeytab("carol", k.Realm(), kt, cfg, client.DisablePAFXFAST(true)).Login(); err != nil {
		t.Errorf("exported keytab login: %v", err)
	}
	if err := client.NewWithPassword("carol", k.Realm(), "carol-secret", cfg, client.DisablePAFXFAST(true)).Login(); err != nil {
		t.Errorf("password login after the export: %v", err)
	}
}

func TestAWrongPasswordAnOldKeytabAndAnUnknownPrincipalAreRefused(t *testing.T) {
	k := start(t)
	cfg, err := config.Load(k.Krb5Conf())
	if err != nil {
		t.Fatal(err)
	}
	old, err := k.AddKeytabPrincipal("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Keytab("alice"); err != nil { // a new key: old is stale
		t.Fatal(err)
	}
	kt, err := keytab.Load(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.AddPasswordPrincipal("carol", "carol-secret"); err != nil {
		t.Fatal(err)
	}
	for name, cl := range map[string]*client.Client{
		"old keytab":        client.NewWithKeytab("alice", k.Realm(), kt, cfg, client.DisablePAFXFAST(true)),
		"wrong password":    client.NewWithPassword("carol", k.Realm(), "not-it", cfg, client.DisablePAFXFAST(true)),
		"unknown principal": client.NewWithPassword("nobody", k.Realm(), "x", cfg, client.DisablePAFXFAST(true)),
	} {
		err := cl.Login()
		if err == nil {
			t.Errorf("%s: logged in", name)
			continue
		}
		want := "PREAUTH_FAILED"
		if name == "unknown principal" {
			want = "CLIENT_NOT_FOUND"
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %s", name, err, want)
		}
	}
}
