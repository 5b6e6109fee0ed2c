// Package realkafka assembles Apache Kafka 4.4 from Maven Central and runs
// KRaft clusters of one or three nodes as JVM processes on loopback, for the
// end-to-end, fault, interop and benchmark suites. Nothing it downloads is
// kept in the repository: the jars go to a cache directory (CacheDir).
package realkafka

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Version is the Apache Kafka release the bench runs.
const Version = "4.4.0"

//go:embed pom.xml
var pom []byte

// Dist is a Kafka distribution on local disk: the classpath of the broker,
// its storage tool and the Java client, and the JDK tools to run them.
type Dist struct {
	Lib     string // directory of jars; the classpath is Lib/*
	Java    string // the java launcher
	Keytool string
}

// Classpath returns the JVM classpath of the distribution.
func (d *Dist) Classpath() string { return filepath.Join(d.Lib, "*") }

// CacheDir is where Fetch keeps the jars: $KAFKABATCHER_CACHE, else
// <user cache dir>/kafkabatcher.
func CacheDir() (string, error) {
	if d := os.Getenv("KAFKABATCHER_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set KAFKABATCHER_CACHE): %w", err)
	}
	return filepath.Join(d, "kafkabatcher"), nil
}

// ErrMissingTool is returned by Fetch when java, keytool or mvn is not
// installed; the message names the tool and the package that brings it.
var ErrMissingTool = errors.New("missing tool")

// Fetch returns the Kafka distribution in cacheDir, resolving it from Maven
// Central first when it is not there yet (about 45 MB; later calls reuse
// it). Maven's output goes to log.
func Fetch(ctx context.Context, cacheDir string, log io.Writer) (*Dist, error) {
	d := &Dist{Lib: filepath.Join(cacheDir, "kafka-"+Version, "lib")}
	var err error
	if d.Java, err = tool("java", "a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)"); err != nil {
		return nil, err
	}
	if d.Keytool, err = tool("keytool", "the JDK's keytool (Debian: apt-get install openjdk-17-jdk-headless)"); err != nil {
		return nil, err
	}
	done := filepath.Join(d.Lib, ".complete")
	if want, err := os.ReadFile(done); err == nil && bytes.Equal(want, pom) {
		return d, nil
	}
	mvn, err := tool("mvn", "Maven 3 (Debian: apt-get install maven)")
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(d.Lib); err != nil {
		return nil, err
	}
	work := filepath.Join(cacheDir, "kafka-"+Version)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	pomPath := filepath.Join(work, "pom.xml")
	if err := os.WriteFile(pomPath, pom, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, mvn, "-B", "-q", "-Dstyle.color=never", "-f", pomPath,
		"dependency:copy-dependencies", "-DoutputDirectory="+d.Lib)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(log, &out)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("fetch Kafka %s from Maven Central (mvn dependency:copy-dependencies): %w\n%s",
			Version, err, tail(out.String(), 2000))
	}
	if _, err := os.Stat(filepath.Join(d.Lib, "kafka_2.13-"+Version+".jar")); err != nil {
		return nil, fmt.Errorf("fetch Kafka %s: Maven finished without the broker jar: %w", Version, err)
	}
	if err := os.WriteFile(done, pom, 0o644); err != nil {
		return nil, err
	}
	return d, nil
}

func tool(name, what string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found on PATH; the real-Kafka bench needs %s", ErrMissingTool, name, what)
	}
	return p, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// JavaCmd returns a command that runs a Java program on the distribution's
// classpath: a main class name, or a single .java source file (Java 11+
// launches those without a separate compile step).
func (d *Dist) JavaCmd(ctx context.Context, main string, args ...string) *exec.Cmd {
	jvm := []string{"-cp", d.Classpath(), "-Xmx256m", "-Dlog4j2.level=warn"}
	if strings.HasSuffix(main, ".java") {
		jvm = append(jvm, "--source", "17")
	}
	return exec.CommandContext(ctx, d.Java, append(append(jvm, main), args...)...)
}
