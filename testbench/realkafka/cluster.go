package realkafka

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kafkabatcher/kafkabatcherexporter/testbench/proxy"
)

// Options says what cluster Start runs.
type Options struct {
	// Nodes is 1 (one combined broker and controller) or 3 (three combined
	// nodes with a static quorum; internal topics replicated 3 times with
	// min.insync.replicas 2).
	Nodes int
	// Dir holds each node's config, data and log. Required.
	Dir string
	// Proxy puts a toxiproxy in front of every broker's PLAINTEXT client
	// listener; brokers advertise the proxy's port, so every byte a client
	// sends crosses it. Inter-broker traffic does not.
	Proxy bool
	// Security adds a SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256,
	// SCRAM-SHA-512; users Users, and EventHubsUser with PLAIN), an SSL
	// listener with a keytool-made certificate (CAFile), a SASL_SSL listener
	// (SASLSSLBootstrap: the SASL_PLAINTEXT logins over that TLS), an OAUTHBEARER listener (OAuthBootstrap) that
	// verifies JWTs of an OIDC test server (OIDC), a GSSAPI listener
	// (KerberosBootstrap) with an MIT KDC (KDC), and the StandardAuthorizer.
	// The PLAINTEXT listener's ANONYMOUS principal, the user "alice" (SASL
	// and Kerberos) and the OIDC client OAuthClientID are super users; "bob"
	// has no ACLs unless a test grants them.
	Security bool
	// ClientPorts fixes the PLAINTEXT client port of each node (for `make
	// kafka`); zero means free ports.
	ClientPorts []int
	// Heap is the JVM's -Xmx per node; default 384m.
	Heap string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Users are the SASL users the Security listener knows, name to password,
// for every mechanism.
var Users = map[string]string{"alice": "alice-secret", "bob": "bob-secret"}

// EventHubsUser is a PLAIN user named as Azure Event Hubs names the one
// of every Kafka client, whose password is EventHubsConnectionString; a
// super user. SCRAM does not know it (the format tool's --add-scram
// cannot take a password with ',' or '=').
const (
	EventHubsUser             = "$ConnectionString"
	EventHubsConnectionString = "Endpoint=sb://kafkabatcher-test.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2VjcmV0LWtleS1mb3ItdGVzdHM="
)

// Cluster is a running Kafka cluster.
type Cluster struct {
	dist  *Dist
	opts  Options
	id    string
	nodes []*Node
	proxy *proxy.Set // nil without Options.Proxy
	ca    string     // PEM file of the SSL listener's certificate
	auth  auth       // OIDC server and KDC (Options.Security)
}

// Node is one Kafka process of a cluster.
type Node struct {
	ID          int
	dir         string
	props       string
	logPath     string
	clientAddr  string // PLAINTEXT listener, as advertised (the proxy's with Options.Proxy)
	brokerAddr  string // PLAINTEXT listener itself
	saslAddr    string
	sslAddr     string
	saslSSLAddr string // SASL_SSL listener
	oauthAddr   string // OAUTHBEARER listener (SASL_PLAINTEXT)
	krbAddr     string // GSSAPI listener (SASL_PLAINTEXT), bound on 127.0.0.1
	// krbAdvertised is the GSSAPI listener as advertised: localhost, the
	// host part of the brokers' service principal kafka/localhost.
	krbAdvertised string
	internal      string // inter-broker PLAINTEXT listener
	controller    string // KRaft controller listener
	c             *Cluster

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// readyLimit bounds a cluster's start: JVMs on two busy cores take a while.
const readyLimit = 90 * time.Second

// Start formats and starts a cluster and waits until every broker answers
// Metadata with the whole cluster. Close stops it.
func Start(ctx context.Context, dist *Dist, opts Options) (*Cluster, error) {
	if opts.Nodes != 1 && opts.Nodes != 3 {
		return nil, fmt.Errorf("realkafka: Nodes must be 1 or 3, got %d", opts.Nodes)
	}
	if opts.Dir == "" {
		return nil, errors.New("realkafka: Options.Dir is required")
	}
	if opts.Heap == "" {
		opts.Heap = "384m"
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	c := &Cluster{dist: dist, opts: opts, id: clusterID()}
	if err := c.layout(); err != nil {
		c.Close()
		return nil, err
	}
	if opts.Security {
		var err error
		if c.ca, err = makeKeystore(ctx, dist, opts.Dir); err != nil {
			c.Close()
			return nil, err
		}
		if err := c.startAuth(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := n.writeConfig(); err != nil {
			c.Close()
			return nil, err
		}
		if err := n.format(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	start := time.Now()
	for _, n := range c.nodes {
		if err := n.Start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitReady(ctx, readyLimit); err != nil {
		c.Close()
		return nil, err
	}
	fmt.Fprintf(opts.Log, "realkafka: %d-node Kafka %s ready in %s at %s\n",
		opts.Nodes, Version, time.Since(start).Round(time.Millisecond), strings.Join(c.Bootstrap(), ","))
	return c, nil
}

// layout picks every port and creates the nodes and, with Options.Proxy,
// their proxies.
func (c *Cluster) layout() error {
	if c.opts.Proxy {
		c.proxy = proxy.New()
	}
	for i := 1; i <= c.opts.Nodes; i++ {
		dir := filepath.Join(c.opts.Dir, "node"+strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			return err
		}
		n := &Node{ID: i, dir: dir, c: c, props: filepath.Join(dir, "server.properties"),
			logPath: filepath.Join(dir, "kafka.log")}
		client := 0
		if len(c.opts.ClientPorts) >= i {
			client = c.opts.ClientPorts[i-1]
		}
		ports, err := FreePorts(8)
		if err != nil {
			return err
		}
		if client == 0 {
			client = ports[4]
		}
		n.brokerAddr = loopback(client)
		n.clientAddr = n.brokerAddr
		n.saslAddr, n.sslAddr, n.saslSSLAddr = loopback(ports[1]), loopback(ports[2]), loopback(ports[7])
		n.oauthAddr, n.krbAddr = loopback(ports[5]), loopback(ports[6])
		n.krbAdvertised = net.JoinHostPort("localhost", strconv.Itoa(ports[6]))
		if c.proxy != nil {
			// The broker listens on a free port; the proxy takes the port
			// clients are told about.
			n.brokerAddr = loopback(ports[3])
			if err := c.proxy.Add(fmt.Sprintf("kafka%d", i), n.clientAddr, n.brokerAddr); err != nil {
				return fmt.Errorf("realkafka: %w", err)
			}
		}
		n.internal, n.controller = loopback(ports[0]), ""
		c.nodes = append(c.nodes, n)
	}
	ctl, err := FreePorts(c.opts.Nodes)
	if err != nil {
		return err
	}
	for i, n := range c.nodes {
		n.controller = loopback(ctl[i])
	}
	return nil
}

// clusterID is 16 random bytes, base64url without padding, never starting
// with '-' (the storage tool would read it as a flag).
func clusterID() string {
	for {
		b := make([]byte, 16)
		_, _ = crand.Read(b)
		id := base64.RawURLEncoding.EncodeToString(b)
		if id[0] != '-' {
			return id
		}
	}
}

// Bootstrap returns the PLAINTEXT client addresses of every node (through
// the proxies with Options.Proxy).
func (c *Cluster) Bootstrap() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.clientAddr
	}
	return out
}

// SASLBootstrap returns the SASL_PLAINTEXT addresses (Options.Security).
func (c *Cluster) SASLBootstrap() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.saslAddr
	}
	return out
}

// SASLSSLBootstrap returns the SASL_SSL addresses (Options.Security): the
// SASL logins over TLS with the certificate CAFile signs.
func (c *Cluster) SASLSSLBootstrap() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.saslSSLAddr
	}
	return out
}

// SSLBootstrap returns the SSL addresses (Options.Security).
func (c *Cluster) SSLBootstrap() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.sslAddr
	}
	return out
}

// CAFile is the PEM certificate that signs the SSL listener (Options.Security).
func (c *Cluster) CAFile() string { return c.ca }

// Nodes returns the cluster's nodes, ID 1 first.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node with the given ID.
func (c *Cluster) Node(id int) *Node { return c.nodes[id-1] }

// Dist returns the distribution the cluster runs.
func (c *Cluster) Dist() *Dist { return c.dist }

// Close kills every node and stops the proxies. The cluster's data is
// thrown away, so there is nothing to shut down cleanly (and the last nodes
// of a quorum would wait for the ones already gone).
func (c *Cluster) Close() {
	for _, n := range c.nodes {
		n.Kill()
	}
	if c.proxy != nil {
		c.proxy.Close()
	}
	c.stopAuth()
}

// format runs the storage tool on the node's log directory.
func (n *Node) format(ctx context.Context) error {
	args := []string{"format", "--cluster-id=" + n.c.id, "-c", n.props, "--ignore-formatted"}
	if n.c.opts.Nodes == 1 {
		args = append(args, "--standalone")
	}
	if n.c.opts.Security {
		for user, pass := range Users {
			for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
				args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", mech, user, pass))
			}
		}
	}
	cmd := exec.CommandContext(ctx, n.c.dist.Java, append(n.jvmArgs("128m"), append([]string{"kafka.tools.StorageTool"}, args...)...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("realkafka: format node %d: %w\n%s", n.ID, err, tail(string(out), 2000))
	}
	return nil
}

func (n *Node) jvmArgs(heap string) []string {
	args := []string{
		"-Xmx" + heap, "-Xms64m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
		"-Djava.awt.headless=true", "-Dkafka.logs.dir=" + n.dir,
		"-Dlog4j2.configurationFile=" + filepath.Join(n.dir, "log4j2.properties"),
	}
	args = append(args, n.c.authJVMArgs()...)
	return append(args, "-cp", n.c.dist.Classpath())
}

// Start starts the node's JVM; it does not wait for it to be ready (see
// Cluster.WaitReady). Output goes to the node's log file.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("realkafka: node %d already running", n.ID)
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "---- %s: start node %d\n", time.Now().Format(time.RFC3339Nano), n.ID)
	cmd := exec.Command(n.c.dist.Java, append(n.jvmArgs(n.c.opts.Heap), "kafka.Kafka", n.props)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("realkafka: start node %d: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	fmt.Fprintf(n.c.opts.Log, "realkafka: node %d started, pid %d\n", n.ID, cmd.Process.Pid)
	return nil
}

// stopGrace is how long Stop waits after SIGTERM before SIGKILL; a
// controlled shutdown moves leadership away first.
const stopGrace = 30 * time.Second

// Stop sends SIGTERM and waits for the node to exit (SIGKILL after 30 s).
func (n *Node) Stop() { n.signal(syscall.SIGTERM) }

// Kill sends SIGKILL and waits for the node to exit.
func (n *Node) Kill() { n.signal(syscall.SIGKILL) }

func (n *Node) signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(stopGrace):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	fmt.Fprintf(n.c.opts.Log, "realkafka: node %d stopped (%s), pid %d\n", n.ID, sig, n.cmd.Process.Pid)
	n.cmd, n.done = nil, nil
}

// Running reports whether the node's process is alive.
func (n *Node) Running() bool {
	started, alive := n.state()
	return started && alive
}

// exited reports whether the node was started and its process has exited
// without Stop or Kill.
func (n *Node) exited() bool {
	started, alive := n.state()
	return started && !alive
}

func (n *Node) state() (started, alive bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false, false
	}
	select {
	case <-n.done:
		return true, false
	default:
		return true, true
	}
}

// Pid returns the node's process id, 0 when it is not running.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Addr returns the node's PLAINTEXT client address, as advertised.
func (n *Node) Addr() string { return n.clientAddr }

// LogPath returns the node's log file.
func (n *Node) LogPath() string { return n.logPath }

// FreePorts returns k distinct loopback ports nothing listens on right now,
// below the kernel's ephemeral range. A port in that range can be taken
// while its node is down by a client connecting to it: Linux may give the
// connecting socket that very port as its source and connect it to itself
// (TCP simultaneous open; Java clients do not guard against it, Go's do),
// and the node restarting then fails to bind ("Address already in use").
func FreePorts(k int) ([]int, error) {
	lo, hi := portRange()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]int, 0, k)
	for tries := 0; len(out) < k; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("no free loopback port in %d-%d after %d tries", lo, hi, tries)
		}
		port := lo + rand.IntN(hi-lo)
		if !claimPort(port) {
			continue
		}
		l, err := net.Listen("tcp", loopback(port))
		if err != nil {
			continue // in use by someone else
		}
		ls = append(ls, l)
		out = append(out, port)
	}
	return out, nil
}

// handedOut holds the ports FreePorts returned in this process, so that
// two clusters started one after the other never get the same one while the
// first may still hold it.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

func claimPort(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	if handedOut.ports[port] {
		return false
	}
	handedOut.ports[port] = true
	return true
}

// portRange is where FreePorts picks: from 10000 up to the start of the
// ephemeral range (/proc/sys/net/ipv4/ip_local_port_range, 32768 if it
// cannot be read).
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > lo+1000 {
				hi = v
			}
		}
	}
	return lo, hi
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
