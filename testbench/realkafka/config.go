package realkafka

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// writeConfig writes the node's server.properties and log4j2.properties.
func (n *Node) writeConfig() error {
	c := n.c
	rf := c.opts.Nodes
	minISR := min(2, rf)
	var voters []string
	for _, o := range c.nodes {
		voters = append(voters, fmt.Sprintf("%d@%s", o.ID, o.controller))
	}
	listeners := []string{"INTERNAL://" + n.internal, "CLIENT://" + n.brokerAddr, "CONTROLLER://" + n.controller}
	advertised := []string{"INTERNAL://" + n.internal, "CLIENT://" + n.clientAddr, "CONTROLLER://" + n.controller}
	if c.opts.Security {
		listeners = append(listeners, "SASL_PLAINTEXT://"+n.saslAddr, "SSL://"+n.sslAddr, "SASL_SSL://"+n.saslSSLAddr,
			"OAUTH://"+n.oauthAddr, "KERBEROS://"+n.krbAddr)
		advertised = append(advertised, "SASL_PLAINTEXT://"+n.saslAddr, "SSL://"+n.sslAddr, "SASL_SSL://"+n.saslSSLAddr,
			"OAUTH://"+n.oauthAddr, "KERBEROS://"+n.krbAdvertised)
	}
	protocols := "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,CLIENT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL"
	if c.opts.Security {
		protocols += ",SASL_SSL:SASL_SSL,OAUTH:SASL_PLAINTEXT,KERBEROS:SASL_PLAINTEXT"
	}
	p := []string{
		"process.roles=broker,controller",
		fmt.Sprintf("node.id=%d", n.ID),
		"listeners=" + strings.Join(listeners, ","),
		"advertised.listeners=" + strings.Join(advertised, ","),
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=INTERNAL",
		"listener.security.protocol.map=" + protocols,
		"log.dirs=" + filepath.Join(n.dir, "data"),
		fmt.Sprintf("offsets.topic.replication.factor=%d", rf),
		"offsets.topic.num.partitions=3",
		fmt.Sprintf("transaction.state.log.replication.factor=%d", rf),
		fmt.Sprintf("transaction.state.log.min.isr=%d", minISR),
		fmt.Sprintf("share.coordinator.state.topic.replication.factor=%d", rf),
		fmt.Sprintf("share.coordinator.state.topic.min.isr=%d", minISR),
		fmt.Sprintf("default.replication.factor=%d", rf),
		fmt.Sprintf("min.insync.replicas=%d", minISR),
		"num.partitions=6",
		"auto.create.topics.enable=false",
		"group.initial.rebalance.delay.ms=0",
		// Small and quick: tests start many clusters on two cores.
		"num.network.threads=2",
		"num.io.threads=4",
		"log.segment.bytes=67108864",
		"log.retention.check.interval.ms=600000",
		"socket.request.max.bytes=104857600",
		// A stopped node gives up leadership quickly, a restarted one takes
		// it back soon; tests wait on both.
		"controlled.shutdown.enable=true",
		"leader.imbalance.check.interval.seconds=5",
	}
	if rf == 1 {
		p = append(p, "controller.quorum.bootstrap.servers="+n.controller)
	} else {
		p = append(p, "controller.quorum.voters="+strings.Join(voters, ","))
	}
	if c.opts.Security {
		plain := "org.apache.kafka.common.security.plain.PlainLoginModule required"
		for _, u := range sortedUsers() {
			plain += fmt.Sprintf(" user_%s=%q", u, Users[u])
		}
		plain += fmt.Sprintf(" user_%s=%q", EventHubsUser, EventHubsConnectionString)
		scram := "org.apache.kafka.common.security.scram.ScramLoginModule required;"
		p = append(p, "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512")
		for _, l := range []string{"sasl_plaintext", "sasl_ssl"} {
			p = append(p,
				"listener.name."+l+".plain.sasl.jaas.config="+plain+";",
				"listener.name."+l+".scram-sha-256.sasl.jaas.config="+scram,
				"listener.name."+l+".scram-sha-512.sasl.jaas.config="+scram)
		}
		p = append(p,
			"ssl.keystore.location="+filepath.Join(c.opts.Dir, keystoreName),
			"ssl.keystore.type=PKCS12",
			"ssl.keystore.password="+storePass,
			"ssl.key.password="+storePass,
			"ssl.client.auth=none",
			"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"allow.everyone.if.no.acl.found=false",
			"super.users="+strings.Join(superUsers(), ";"),
		)
		p = append(p, c.authProps()...)
	}
	if err := os.WriteFile(n.props, []byte(strings.Join(p, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	l4j := log4j
	if c.opts.Security {
		l4j += reauthLog
	}
	return os.WriteFile(filepath.Join(n.dir, "log4j2.properties"), []byte(l4j), 0o644)
}

// log4j logs the broker at INFO to stdout (the node's log file), with the
// chattiest loggers turned down.
const log4j = `status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
logger.utils.name = org.apache.kafka.common.utils.AppInfoParser
logger.utils.level = warn
`

// superUsers are the Security cluster's super users: the PLAINTEXT
// listener's ANONYMOUS, alice (SASL and Kerberos) and the OIDC client.
func superUsers() []string {
	out := []string{"User:ANONYMOUS"}
	for _, u := range append([]string{"User:alice", "User:" + EventHubsUser}, authSuperUsers()...) {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

func sortedUsers() []string {
	out := make([]string, 0, len(Users))
	for u := range Users {
		out = append(out, u)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
