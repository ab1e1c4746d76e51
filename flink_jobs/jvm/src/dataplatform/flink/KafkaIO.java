package dataplatform.flink;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.lineage.DefaultKafkaDatasetFacet;
import org.apache.flink.connector.kafka.lineage.DefaultKafkaDatasetIdentifier;
import org.apache.flink.connector.kafka.lineage.KafkaDatasetFacet;
import org.apache.flink.connector.kafka.lineage.KafkaDatasetFacetProvider;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.sink.TransactionNamingStrategy;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
// The Kafka client inside Flink's SQL connector jar (the one on the cluster's classpath) is shaded under
// this prefix; these two are the only client classes the job touches.
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.flink.util.Collector;

/** Kafka sources and sinks of the scoring job, with their delivery guarantees stated where they are built. */
public final class KafkaIO {
    private KafkaIO() {}

    /** A record as read: its bytes and where it came from. */
    public static class Raw {
        public byte[] value;
        public String topic;
        public int partition;
        public long offset;
        public long timestamp;

        public Raw() {}
    }

    static final class RawDeserializer implements KafkaRecordDeserializationSchema<Raw> {
        private static final long serialVersionUID = 1L;

        @Override
        public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Raw> out) {
            Raw raw = new Raw();
            raw.value = record.value();
            raw.topic = record.topic();
            raw.partition = record.partition();
            raw.offset = record.offset();
            raw.timestamp = record.timestamp();
            out.collect(raw);
        }

        @Override
        public TypeInformation<Raw> getProducedType() {
            return TypeInformation.of(Raw.class);
        }
    }

    static Properties properties(Map<String, String> values) {
        Properties properties = new Properties();
        properties.putAll(values);
        return properties;
    }

    /**
     * The input topic from the group's committed offsets (earliest for a new group), or only what arrives
     * from now on; a restore from a checkpoint or savepoint continues from the offsets in it instead.
     */
    public static KafkaSource<Raw> source(String bootstrap, String topic, String groupId, boolean latest,
            Map<String, String> clientProperties) {
        return KafkaSource.<Raw>builder()
                .setBootstrapServers(bootstrap)
                .setTopics(topic)
                .setGroupId(groupId)
                .setStartingOffsets(latest
                        ? OffsetsInitializer.latest()
                        : OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setDeserializer(new RawDeserializer())
                .setProperties(properties(clientProperties))
                // fetch.min.bytes stays 1: a fetch returns as soon as a record is there (the latency path);
                // fetch.max.wait.ms (500 ms) only bounds an idle fetch, so it stays at its default too.
                .setProperty("commit.offsets.on.checkpoint", "true")
                .build();
    }

    /**
     * Serializes (key, value) pairs already rendered as bytes. Names its topic (lineage), which the pooled
     * transactional ids need to find the sink's open transactions after a restart.
     */
    static final class BytesSerializer<T> implements KafkaRecordSerializationSchema<T>, KafkaDatasetFacetProvider {
        private static final long serialVersionUID = 1L;
        private final String topic;
        private final Field<T> key;
        private final Field<T> value;

        interface Field<T> extends java.io.Serializable {
            byte[] get(T record);
        }

        BytesSerializer(String topic, Field<T> key, Field<T> value) {
            this.topic = topic;
            this.key = key;
            this.value = value;
        }

        @Override
        public Optional<KafkaDatasetFacet> getKafkaDatasetFacet() {
            return Optional.of(new DefaultKafkaDatasetFacet(DefaultKafkaDatasetIdentifier.ofTopics(List.of(topic))));
        }

        @Override
        public ProducerRecord<byte[], byte[]> serialize(T record, KafkaSinkContext context, Long timestamp) {
            return new ProducerRecord<>(topic, key.get(record), value.get(record));
        }
    }

    /**
     * At least once: every record is sent as soon as it is made and flushed at each checkpoint; a restore
     * may send again what was sent after the last checkpoint (readers deduplicate on the record's id).
     */
    public static <T> KafkaSink<T> atLeastOnce(String bootstrap, String topic, BytesSerializer.Field<T> key,
            BytesSerializer.Field<T> value, Map<String, String> clientProperties, String lingerMs) {
        return KafkaSink.<T>builder()
                .setBootstrapServers(bootstrap)
                .setKafkaProducerConfig(properties(clientProperties))
                .setProperty("linger.ms", lingerMs)
                .setProperty("enable.idempotence", "true")
                .setProperty("acks", "all")
                .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
                .setRecordSerializer(new BytesSerializer<>(topic, key, value))
                .build();
    }

    /**
     * Exactly once: records go into a Kafka transaction committed when the checkpoint completes, so
     * read-committed readers see each record once. Transactional ids come from a small pool reused across
     * checkpoints instead of a new id per checkpoint (which the broker would keep for a week each).
     */
    public static <T> KafkaSink<T> exactlyOnce(String bootstrap, String topic, BytesSerializer.Field<T> key,
            BytesSerializer.Field<T> value, Map<String, String> clientProperties, String transactionalIdPrefix) {
        return KafkaSink.<T>builder()
                .setBootstrapServers(bootstrap)
                .setKafkaProducerConfig(properties(clientProperties))
                // Below the broker's transaction.max.timeout.ms (15 min); covers a slow checkpoint and a restart.
                .setProperty("transaction.timeout.ms", "600000")
                .setProperty("linger.ms", "5")
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(transactionalIdPrefix)
                .setTransactionNamingStrategy(TransactionNamingStrategy.POOLING)
                .setRecordSerializer(new BytesSerializer<>(topic, key, value))
                .build();
    }
}
