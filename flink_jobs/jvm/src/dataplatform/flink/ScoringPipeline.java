package dataplatform.flink;

import java.util.Map;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * The scoring job's graph, built into the environment the Python job ({@code flink_jobs/fraud_scoring.py})
 * configures and submits:
 *
 * <pre>
 * input topic --source--> parse --(valid, keyBy key)--> decide --> decisions topic   at least once, at once
 *                            |                            \-----> alerts topic      exactly once, per checkpoint
 *                            \--(malformed)--> dead-letter topic                    at least once
 * </pre>
 *
 * One network hop (the keyBy); parse runs in the source's task, the sinks in the operator's.
 */
public final class ScoringPipeline {
    private ScoringPipeline() {}

    static final OutputTag<byte[]> DEAD_LETTERS =
            new OutputTag<>("dead-letters", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);

    /** Valid records continue; every other one becomes a dead letter with its reason. Never fails on data. */
    static final class Parse extends ProcessFunction<KafkaIO.Raw, Event> {
        private static final long serialVersionUID = 1L;
        private final Spec spec;
        private transient RecordParser parser;
        private transient Counter rejected;

        Parse(Spec spec) {
            this.spec = spec;
        }

        @Override
        public void open(OpenContext openContext) {
            parser = new RecordParser(spec.record);
            rejected = getRuntimeContext().getMetricGroup().counter("deadLetters");
        }

        @Override
        public void processElement(KafkaIO.Raw raw, Context context, Collector<Event> out) {
            long now = System.currentTimeMillis();
            Event event = new Event(spec.textSlots, spec.numSlots);
            String reason = parser.parse(raw.value, now, event);
            if (reason != null) {
                rejected.inc();
                context.output(DEAD_LETTERS,
                        Records.deadLetter(raw.value, reason, raw.topic, raw.partition, raw.offset, now));
                return;
            }
            event.topic = raw.topic;
            event.partition = raw.partition;
            event.offset = raw.offset;
            event.sourceTs = raw.timestamp;
            out.collect(event);
        }
    }

    static final class KeyOf implements KeySelector<Event, String> {
        private static final long serialVersionUID = 1L;
        private final int slot;

        KeyOf(int slot) {
            this.slot = slot;
        }

        @Override
        public String getKey(Event event) {
            return event.text[slot];
        }
    }

    /**
     * Add the job's operators to {@code env}. {@code specJson} is the decision spec
     * ({@code hybrid_platform.decision_spec.render()}); {@code settingsJson} names the topics, the Kafka
     * bootstrap and client properties, the consumer group, the transactional-id prefix, the start mode and
     * the model registry.
     */
    public static void build(StreamExecutionEnvironment env, String specJson, String settingsJson) {
        Spec spec = new Spec(specJson);
        Map<String, Object> settings = Spec.settings(settingsJson);
        String bootstrap = Spec.str(settings, "bootstrap");
        Map<String, String> client = Spec.stringMap(settings.get("kafka_properties"));
        boolean latest = "latest-offset".equals(settings.get("start_from"));

        SingleOutputStreamOperator<Event> valid = env
                .fromSource(
                        KafkaIO.source(bootstrap, Spec.str(settings, "input_topic"), Spec.str(settings, "group_id"),
                                latest, client),
                        WatermarkStrategy.noWatermarks(), "source: " + settings.get("input_topic"))
                .uid("source")
                .process(new Parse(spec))
                .uid("parse")
                .name("parse");

        DataStream<byte[]> deadLetters = valid.getSideOutput(DEAD_LETTERS);
        deadLetters
                .sinkTo(KafkaIO.<byte[]>atLeastOnce(bootstrap, Spec.str(settings, "dlq_topic"), record -> null,
                        record -> record, client, "5"))
                .uid("dead-letters-sink")
                .name("sink: " + settings.get("dlq_topic") + " (at least once)");

        SingleOutputStreamOperator<Records.Decision> decided = valid
                .keyBy(new KeyOf(spec.key.slot))
                .process(new Decider(spec, Spec.str(settings, "registry_root")))
                .uid("decide")
                .name("decide on arrival");

        decided.sinkTo(KafkaIO.<Records.Decision>atLeastOnce(bootstrap, Spec.str(settings, "decisions_topic"),
                        d -> d.key, d -> d.decision, client, String.valueOf(settings.getOrDefault("decisions_linger_ms", "0"))))
                .uid("decisions-sink")
                .name("sink: " + settings.get("decisions_topic") + " (at least once)");

        decided.filter(d -> d.alert != null)
                .uid("alerts-filter")
                .name("alerts")
                .sinkTo(KafkaIO.<Records.Decision>exactlyOnce(bootstrap, Spec.str(settings, "alerts_topic"),
                        d -> d.key, d -> d.alert, client, Spec.str(settings, "transactional_id_prefix")))
                .uid("alerts-sink")
                .name("sink: " + settings.get("alerts_topic") + " (exactly once)");
    }
}
