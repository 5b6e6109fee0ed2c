// Interop reads a topic the exporter wrote with the Java client
// (kafka-clients), CRC checks on, and prints one JSON line about what it
// read: record counts, the murmur2 partition check of every key, the header
// and timestamp checks. A CRC or decoding failure is an exception: exit 1.
//
//   java -cp 'lib/*' Interop.java BOOTSTRAP TOPIC HEADER SINCE_MS
//
// HEADER names the header that must equal the record key; SINCE_MS is the
// earliest CreateTime a record may carry.
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.utils.Utils;

public class Interop {
    public static void main(String[] args) {
        String bootstrap = args[0], topic = args[1], header = args[2];
        long since = Long.parseLong(args[3]);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", "kafkabatcher-interop");
        p.put("check.crcs", "true");
        p.put("enable.auto.commit", "false");
        p.put("max.partition.fetch.bytes", "16777216");
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        long records = 0, keyed = 0, murmurMismatch = 0, headerMissing = 0, headerMismatch = 0;
        long notCreateTime = 0, tooOld = 0, inFuture = 0, badValue = 0, dups = 0;
        long maxSeq = -1;
        Map<Integer, Long> seen = new HashMap<>();
        String firstMismatch = "";
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            List<PartitionInfo> infos = c.partitionsFor(topic, Duration.ofSeconds(30));
            int n = infos.size();
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo i : infos) tps.add(new TopicPartition(topic, i.partition()));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            long deadline = System.currentTimeMillis() + 180_000;
            long now = System.currentTimeMillis();
            while (System.currentTimeMillis() < deadline) {
                boolean done = true;
                for (TopicPartition tp : tps) done &= c.position(tp) >= end.get(tp);
                if (done) break;
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    records++;
                    String v = new String(r.value(), StandardCharsets.UTF_8);
                    int bar = v.indexOf('|');
                    try {
                        int seq = Integer.parseInt(bar < 0 ? v : v.substring(0, bar));
                        if (seen.merge(seq, 1L, Long::sum) > 1) dups++;
                        maxSeq = Math.max(maxSeq, seq);
                    } catch (NumberFormatException e) {
                        badValue++;
                    }
                    if (r.key() != null) {
                        keyed++;
                        int want = Utils.toPositive(Utils.murmur2(r.key())) % n;
                        if (want != r.partition()) {
                            murmurMismatch++;
                            if (firstMismatch.isEmpty())
                                firstMismatch = new String(r.key(), StandardCharsets.UTF_8) + " on " + r.partition() + ", murmur2 says " + want;
                        }
                        Header h = r.headers().lastHeader(header);
                        if (h == null) headerMissing++;
                        else if (!Arrays.equals(h.value(), r.key())) headerMismatch++;
                    }
                    if (r.timestampType() != TimestampType.CREATE_TIME) notCreateTime++;
                    if (r.timestamp() < since) tooOld++;
                    if (r.timestamp() > now + 60_000) inFuture++;
                }
            }
            System.out.printf("{\"records\":%d,\"distinct\":%d,\"duplicates\":%d,\"max_seq\":%d,\"partitions\":%d,"
                    + "\"keyed\":%d,\"murmur2_mismatch\":%d,\"first_mismatch\":\"%s\",\"header_missing\":%d,"
                    + "\"header_mismatch\":%d,\"not_create_time\":%d,\"too_old\":%d,\"in_future\":%d,\"bad_value\":%d}%n",
                    records, seen.size(), dups, maxSeq, n, keyed, murmurMismatch, firstMismatch, headerMissing,
                    headerMismatch, notCreateTime, tooOld, inFuture, badValue);
        }
    }
}
