// Package kdc runs a throwaway MIT Kerberos KDC for tests: krb5kdc as a
// foreground child process with its own kdc.conf, krb5.conf and database
// under a directory, on a free loopback TCP port, and kadmin.local to make
// principals with a keytab or a password. The krb5.conf it writes works
// for the JVM (-Djava.security.krb5.conf) and for gokrb5: TCP only, no DNS,
// no reverse lookups, and only the AES enctypes gokrb5 supports
// (aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96).
//
// The tools come from Debian's krb5-kdc and krb5-admin-server packages
// (scripts/deps.sh); they live in /usr/sbin, which is looked at when they
// are not on PATH.
package kdc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultRealm is the realm Start uses when Options.Realm is empty.
const DefaultRealm = "KAFKABATCHER.TEST"

// enctypes are the only encryption types the KDC issues keys and tickets
// in: both are supported by gokrb5 and the JVM.
const enctypes = "aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96"

// Options says what KDC Start runs.
type Options struct {
	// Dir holds the configuration, database, keytabs and log. Required.
	Dir string
	// Realm is the Kerberos realm; default DefaultRealm.
	Realm string
	// Port is the KDC's TCP port on 127.0.0.1; zero picks a free one.
	Port int
}

// KDC is a running krb5kdc. Close stops it.
type KDC struct {
	realm   string
	dir     string
	addr    string // 127.0.0.1:port
	krb5    string // krb5.conf
	kdcConf string // kdc.conf
	logPath string
	env     []string
	kadmin  string

	mu   sync.Mutex // serializes kadmin.local (one database)
	cmd  *exec.Cmd
	done chan struct{}
}

// ErrMissingTool is returned by Start when krb5kdc, kdb5_util or
// kadmin.local cannot be found; the message names the Debian package.
var ErrMissingTool = errors.New("missing tool")

// Tool returns the path of an MIT Kerberos admin tool: on PATH, else in
// /usr/sbin or /sbin (not on an ordinary user's PATH on Debian).
func Tool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	pkg := "krb5-kdc"
	if name == "kadmin.local" {
		pkg = "krb5-admin-server"
	}
	return "", fmt.Errorf("kdc: %w: %s not on PATH nor in /usr/sbin (Debian: apt-get install %s, or make deps)", ErrMissingTool, name, pkg)
}

// Start writes the configuration, creates the database and starts krb5kdc,
// returning once it accepts TCP connections.
func Start(ctx context.Context, opts Options) (*KDC, error) {
	if opts.Dir == "" {
		return nil, errors.New("kdc: Options.Dir is required")
	}
	if opts.Realm == "" {
		opts.Realm = DefaultRealm
	}
	krb5kdc, err := Tool("krb5kdc")
	if err != nil {
		return nil, err
	}
	kdb5util, err := Tool("kdb5_util")
	if err != nil {
		return nil, err
	}
	kadmin, err := Tool("kadmin.local")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	k := &KDC{
		realm:   opts.Realm,
		dir:     opts.Dir,
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		krb5:    filepath.Join(opts.Dir, "krb5.conf"),
		kdcConf: filepath.Join(opts.Dir, "kdc.conf"),
		logPath: filepath.Join(opts.Dir, "krb5kdc.log"),
		kadmin:  kadmin,
	}
	k.env = append(os.Environ(), "KRB5_CONFIG="+k.krb5, "KRB5_KDC_PROFILE="+k.kdcConf)
	if err := k.writeConfig(port); err != nil {
		return nil, err
	}
	master := make([]byte, 16)
	_, _ = rand.Read(master)
	if out, err := k.run(ctx, kdb5util, "-r", k.realm, "create", "-s", "-P", hex.EncodeToString(master)); err != nil {
		return nil, fmt.Errorf("kdc: kdb5_util create: %w\n%s", err, out)
	}
	f, err := os.OpenFile(k.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(krb5kdc, "-n", "-r", k.realm)
	cmd.Env, cmd.Stdout, cmd.Stderr = k.env, f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("kdc: start krb5kdc: %w", err)
	}
	k.cmd, k.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(k.done) }()
	if err := k.waitListening(10 * time.Second); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

func (k *KDC) writeConfig(port int) error {
	kdcConf := fmt.Sprintf(`[kdcdefaults]
	kdc_listen = ""
	kdc_tcp_listen = 127.0.0.1:%[2]d

[realms]
	%[1]s = {
		database_name = %[3]s
		key_stash_file = %[4]s
		acl_file = %[5]s
		max_life = 10h
		max_renewable_life = 1d
		master_key_type = aes256-cts-hmac-sha1-96
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
		default_principal_flags = +preauth
	}

[logging]
	kdc = FILE:%[6]s
	admin_server = FILE:%[6]s
	default = FILE:%[6]s
`, k.realm, port, filepath.Join(k.dir, "principal"), filepath.Join(k.dir, "stash"),
		filepath.Join(k.dir, "kadm5.acl"), k.logPath)
	krb5 := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
	default_tkt_enctypes = %[3]s
	default_tgs_enctypes = %[3]s
	permitted_enctypes = %[3]s
	ticket_lifetime = 10h
	forwardable = false

[realms]
	%[1]s = {
		kdc = %[2]s
		admin_server = %[2]s
	}

[domain_realm]
	localhost = %[1]s
	.localhost = %[1]s
`, k.realm, k.addr, enctypes)
	if err := os.WriteFile(k.kdcConf, []byte(kdcConf), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(k.dir, "kadm5.acl"), []byte("*/admin@"+k.realm+" *\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(k.krb5, []byte(krb5), 0o644)
}

func (k *KDC) waitListening(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", k.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-k.done:
			return fmt.Errorf("kdc: krb5kdc exited while starting:\n%s", tailFile(k.logPath))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kdc: krb5kdc not listening on %s after %s: %v\n%s", k.addr, limit, err, tailFile(k.logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs an MIT tool with the KDC's configuration, returning its output.
func (k *KDC) run(ctx context.Context, tool string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = k.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// kadminQuery runs one kadmin.local query. kadmin.local exits 0 even when
// the query fails, so any output line but the usual chatter is an error.
func (k *KDC) kadminQuery(query string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	out, err := k.run(context.Background(), k.kadmin, "-r", k.realm, "-q", query)
	if err == nil {
		for _, l := range strings.Split(out, "\n") {
			if l = strings.TrimSpace(l); l != "" && !chatter(l) {
				err = errors.New(l)
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("kdc: kadmin.local -q %q: %w", redact(query), err)
	}
	return nil
}

// chatter reports whether a kadmin.local output line says nothing went wrong.
func chatter(l string) bool {
	for _, p := range []string{"Authenticating as principal ", "No policy specified for ", "Principal \"", "Entry for principal ", "No dictionary file"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// Principal returns name qualified with the realm (name@REALM) unless it
// already names one.
func (k *KDC) Principal(name string) string {
	if strings.Contains(name, "@") {
		return name
	}
	return name + "@" + k.realm
}

// AddKeytabPrincipal creates a principal with a random key and writes its
// keytab to <Dir>/<name>.keytab ('/' in name becomes '_'), returning the
// keytab's path.
func (k *KDC) AddKeytabPrincipal(name string) (string, error) {
	p := k.Principal(name)
	if err := k.kadminQuery("addprinc -randkey " + p); err != nil {
		return "", err
	}
	return k.Keytab(name)
}

// Keytab gives principal name a new random key (its key version number
// goes up by one) and writes it to a new keytab file, returning its path.
// Keytabs written before hold the old key: a client using one is refused.
func (k *KDC) Keytab(name string) (string, error) {
	return k.writeKeytab(name, "")
}

func (k *KDC) writeKeytab(name, flags string) (string, error) {
	p := k.Principal(name)
	base := strings.NewReplacer("/", "_", "@", "_").Replace(strings.TrimSuffix(p, "@"+k.realm))
	path := filepath.Join(k.dir, base+".keytab")
	for i := 2; ; i++ {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
		path = filepath.Join(k.dir, fmt.Sprintf("%s.%d.keytab", base, i))
	}
	// Keys kept (-norandkey) are written in every enctype they have (the
	// KDC's supported_enctypes); kadmin refuses -e with -norandkey.
	q := fmt.Sprintf("ktadd -k %s -e %q %s", path, keysalts(), p)
	if flags != "" {
		q = fmt.Sprintf("ktadd -k %s %s %s", path, flags, p)
	}
	if err := k.kadminQuery(q); err != nil {
		return "", err
	}
	return path, nil
}

// ExportKeytab writes principal name's current keys to a new keytab file
// without changing them, returning its path: a principal made with a
// password can then log in with either.
func (k *KDC) ExportKeytab(name string) (string, error) {
	return k.writeKeytab(name, "-norandkey")
}

// AddPasswordPrincipal creates a principal with a password.
func (k *KDC) AddPasswordPrincipal(name, password string) error {
	if strings.ContainsAny(password, "\"\\\n") {
		return errors.New("kdc: a password with quotes, backslashes or newlines is not supported")
	}
	return k.kadminQuery(fmt.Sprintf("addprinc -pw %q %s", password, k.Principal(name)))
}

func keysalts() string {
	var out []string
	for _, e := range strings.Fields(enctypes) {
		out = append(out, e+":normal")
	}
	return strings.Join(out, ",")
}

// redact hides a password in a query shown in an error.
func redact(q string) string {
	if i := strings.Index(q, "-pw "); i >= 0 {
		return q[:i] + "-pw ***" + q[strings.LastIndex(q, " "):]
	}
	return q
}

// Realm is the KDC's realm.
func (k *KDC) Realm() string { return k.realm }

// Addr is the KDC's TCP address (127.0.0.1:port).
func (k *KDC) Addr() string { return k.addr }

// Krb5Conf is the path of the krb5.conf clients use (JVM and gokrb5).
func (k *KDC) Krb5Conf() string { return k.krb5 }

// LogPath is the KDC's log file (one line per AS and TGS request).
func (k *KDC) LogPath() string { return k.logPath }

// Close stops krb5kdc.
func (k *KDC) Close() {
	if k.cmd == nil {
		return
	}
	_ = k.cmd.Process.Kill()
	<-k.done
	k.cmd = nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
