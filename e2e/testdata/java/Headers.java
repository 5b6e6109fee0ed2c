// Headers reads a topic to its end offsets with the Java client
// (kafka-clients), CRC checks on, and prints one line per record:
// "PARTITION OFFSET<TAB>HEADERS", HEADERS as the console consumer's
// print.headers shows them (name:value pairs joined by ",", in the record's
// order; NO_HEADERS for none). A CRC or decoding failure is an exception:
// exit 1.
//
//   java -cp 'lib/*' Headers.java BOOTSTRAP TOPIC
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class Headers {
    public static void main(String[] args) {
        String bootstrap = args[0], topic = args[1];
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", "kafkabatcher-headers");
        p.put("check.crcs", "true");
        p.put("enable.auto.commit", "false");
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        StringBuilder out = new StringBuilder();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(30))) {
                tps.add(new TopicPartition(topic, pi.partition()));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            long deadline = System.currentTimeMillis() + 120_000;
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    done &= c.position(tp) >= end.get(tp);
                }
                if (done) {
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    throw new RuntimeException("not at the end of " + topic + " within 120 s");
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    StringBuilder h = new StringBuilder();
                    for (Header x : r.headers()) {
                        if (h.length() > 0) {
                            h.append(',');
                        }
                        h.append(x.key()).append(':');
                        h.append(x.value() == null ? "null" : new String(x.value(), StandardCharsets.UTF_8));
                    }
                    out.append(r.partition()).append(' ').append(r.offset()).append('\t');
                    out.append(h.length() == 0 ? "NO_HEADERS" : h).append('\n');
                }
            }
        }
        System.out.print(out);
    }
}
