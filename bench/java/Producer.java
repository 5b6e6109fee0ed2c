// Producer is the benchmark's Java ceiling: the Apache Kafka Java client
// (kafka-clients, on the realkafka classpath) fed the same pre-encoded
// values as the Go systems, acks=all, no compression, otherwise the
// client's defaults (idempotent, linger.ms 5, batch.size 16384) unless
// SETTINGS (key=value,... producer properties) overrides them: the bench's
// java-tuned row gives batch.size=1048576,linger.ms=10,acks=all,
// enable.idempotence=true.
//
//   java -cp '<realkafka lib>/*' Producer.java BOOTSTRAP TOPIC VALUES RECORDS CALLERS PER_CALL [WARMUP [SETTINGS]]
//
// VALUES holds the values as 4-byte big-endian length + bytes. A warm-up
// of WARMUP records (default 50,000, so the JIT has compiled the send path)
// runs before the window; the window ends when
// every record of it is acknowledged. One JSON line on stdout: records,
// errors, elapsed_ns, cpu_ns (process CPU inside the window), p50_ms and
// p99_ms (send to callback, per record).
import java.io.DataInputStream;
import java.io.FileInputStream;
import java.io.BufferedInputStream;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Producer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], valuesPath = args[2];
        int records = Integer.parseInt(args[3]), callers = Integer.parseInt(args[4]), perCall = Integer.parseInt(args[5]);
        int warmup = args.length > 6 ? Integer.parseInt(args[6]) : 50_000;
        List<byte[]> values = new ArrayList<>();
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(new FileInputStream(valuesPath)))) {
            while (in.available() > 0) {
                byte[] v = new byte[in.readInt()];
                in.readFully(v);
                values.add(v);
            }
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "bench-java");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "1000000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        if (args.length > 7) {
            for (String kv : args[7].split(",")) {
                if (kv.isEmpty()) {
                    continue;
                }
                String[] f = kv.split("=", 2);
                if (f.length != 2) {
                    throw new IllegalArgumentException("settings: want key=value, got " + kv);
                }
                p.put(f[0], f[1]);
            }
        }
        com.sun.management.OperatingSystemMXBean os =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            Result warm = send(producer, topic, values, Math.max(perCall, warmup), callers, perCall);
            if (warm.errors.get() > 0) {
                throw new RuntimeException("warm-up: " + warm.first.get());
            }
            long cpu0 = os.getProcessCpuTime();
            long t0 = System.nanoTime();
            Result r = send(producer, topic, values, records, callers, perCall);
            long elapsed = System.nanoTime() - t0;
            long cpu = os.getProcessCpuTime() - cpu0;
            long[] lat = r.latencies;
            Arrays.sort(lat);
            String first = r.first.get() == null ? "" : r.first.get().toString().replace("\\", "\\\\").replace("\"", "'");
            System.out.printf("{\"records\":%d,\"errors\":%d,\"elapsed_ns\":%d,\"cpu_ns\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"first_error\":\"%s\"}%n",
                records, r.errors.get(), elapsed, cpu, rank(lat, 0.50) / 1e6, rank(lat, 0.99) / 1e6, first);
        }
    }

    static final class Result {
        final long[] latencies;
        final AtomicInteger errors = new AtomicInteger();
        final AtomicReference<Exception> first = new AtomicReference<>();
        Result(int n) { latencies = new long[n]; }
    }

    // send sends n records from callers threads in rounds of perCall and
    // returns when every callback has run.
    static Result send(KafkaProducer<byte[], byte[]> producer, String topic, List<byte[]> values,
                       int n, int callers, int perCall) throws InterruptedException {
        Result r = new Result(n);
        CountDownLatch done = new CountDownLatch(n);
        AtomicInteger next = new AtomicInteger();
        int rounds = (n + perCall - 1) / perCall;
        Thread[] ts = new Thread[callers];
        for (int t = 0; t < callers; t++) {
            ts[t] = new Thread(() -> {
                for (;;) {
                    int c = next.getAndIncrement();
                    if (c >= rounds) {
                        return;
                    }
                    for (int j = 0; j < perCall && c * perCall + j < n; j++) {
                        int i = c * perCall + j;
                        long t0 = System.nanoTime();
                        producer.send(new ProducerRecord<>(topic, values.get(i % values.size())), (md, err) -> {
                            r.latencies[i] = System.nanoTime() - t0;
                            if (err != null) {
                                r.errors.incrementAndGet();
                                r.first.compareAndSet(null, err);
                            }
                            done.countDown();
                        });
                    }
                }
            });
            ts[t].start();
        }
        for (Thread t : ts) {
            t.join();
        }
        done.await();
        return r;
    }

    static long rank(long[] s, double q) {
        int i = (int) (q * s.length + 0.5) - 1;
        return s[Math.max(0, Math.min(i, s.length - 1))];
    }
}
