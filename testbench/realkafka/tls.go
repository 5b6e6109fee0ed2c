package realkafka

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
)

const (
	keystoreName = "broker.p12"
	storePass    = "kafkabatcher"
)

// makeKeystore makes a self-signed certificate for localhost and 127.0.0.1
// with keytool, in a PKCS12 keystore the SSL listeners use, and exports it
// as PEM for the Go side's ca_file. It returns the PEM's path.
func makeKeystore(ctx context.Context, d *Dist, dir string) (string, error) {
	ks := filepath.Join(dir, keystoreName)
	pem := filepath.Join(dir, "ca.pem")
	steps := [][]string{
		{"-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity", "30",
			"-storetype", "PKCS12", "-keystore", ks, "-storepass", storePass, "-keypass", storePass,
			"-dname", "CN=localhost,O=kafkabatcher test bench", "-ext", "SAN=DNS:localhost,IP:127.0.0.1",
			"-ext", "BC:c=ca:true"},
		{"-exportcert", "-rfc", "-alias", "broker", "-keystore", ks, "-storepass", storePass, "-file", pem},
	}
	for _, args := range steps {
		out, err := exec.CommandContext(ctx, d.Keytool, args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("realkafka: keytool %s: %w\n%s", args[0], err, out)
		}
	}
	return pem, nil
}
