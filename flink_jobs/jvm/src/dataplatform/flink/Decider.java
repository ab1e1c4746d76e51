package dataplatform.flink;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.List;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decide on arrival: one keyed operator computes the key's features as of the event's arrival, scores
 * them and emits the decision at once (no watermark, no timer).
 *
 * <p>State per key is one compact history ({@link Features}), bounded by time, by a cap per key, and by
 * a time-to-live for keys that fall silent. The champion model changes only at checkpoint barriers and
 * its version is part of the checkpoint, so a restore replays every decision with the model it was made
 * with; a newly promoted model takes effect at the next checkpoint, without a restart.
 */
public final class Decider extends KeyedProcessFunction<String, Event, Records.Decision>
        implements CheckpointedFunction {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(Decider.class);

    private final Spec spec;
    private final String registryRoot;

    private transient ValueState<byte[]> history;
    private transient ListState<String> championState;
    private transient Features features;
    private transient Scorer scorer;
    private transient Model.Registry registry;
    private transient Model model;
    private transient double[] values;
    private transient Counter alerts;
    private transient Counter cappedKeys;

    public Decider(Spec spec, String registryRoot) {
        this.spec = spec;
        this.registryRoot = registryRoot;
    }

    /** How long a silent key's history survives: twice what any later event of it could still use. */
    static Duration timeToLive(Spec spec) {
        return Duration.ofMillis(2 * (spec.horizonMs + spec.allowedLatenessMs));
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        championState = context.getOperatorStateStore()
                .getUnionListState(new ListStateDescriptor<>("champion-model", Types.STRING));
        registry = new Model.Registry(registryRoot, spec.featureSpecVersion);
        model = null;
        if (context.isRestored()) {
            for (String version : championState.get()) {
                try {
                    model = registry.load(version);
                    LOG.info("restored with model {} (the one its checkpoint was taken with)", version);
                } catch (Exception e) {
                    LOG.warn("model {} of the checkpoint is unreadable ({}); using the current champion", version,
                            e.getMessage());
                }
                break;
            }
        }
        if (model == null) {
            model = registry.refresh(null);
        }
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        // The barrier is the one place the model may change: every event after it, in this run or a replay
        // from this checkpoint, is scored by the model recorded here.
        Model next = registry.refresh(model);
        if (next != model) {
            LOG.info("model {} takes effect after checkpoint {}", next == null ? "none" : next.version,
                    context.getCheckpointId());
        } else if (registry.lastError != null) {
            LOG.warn("model reload: {}", registry.lastError);
        }
        model = next;
        championState.update(model == null ? Collections.emptyList() : List.of(model.version));
    }

    @Override
    public void open(OpenContext openContext) {
        ValueStateDescriptor<byte[]> descriptor =
                new ValueStateDescriptor<>("history", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
        descriptor.enableTimeToLive(StateTtlConfig.newBuilder(timeToLive(spec))
                .updateTtlOnCreateAndWrite()
                .neverReturnExpired()
                .cleanupIncrementally(10, false)
                .build());
        history = getRuntimeContext().getState(descriptor);
        features = new Features(spec);
        scorer = new Scorer(spec);
        values = new double[spec.featureNames.size()];
        alerts = getRuntimeContext().getMetricGroup().counter("alerts");
        cappedKeys = getRuntimeContext().getMetricGroup().counter("historyCapped");
    }

    @Override
    public void processElement(Event event, Context context, Collector<Records.Decision> out) throws Exception {
        long now = System.currentTimeMillis();
        long t = event.num[spec.time.slot];
        byte[] next = features.update(history.value(), t, features.columns(event), now, values);
        if (next == null) {
            history.clear();
        } else {
            if (features.count(next) == spec.maxEventsPerKey) {
                cappedKeys.inc();
            }
            history.update(next);
        }
        Scorer.Result result = scorer.score(values, event, model);
        Records.Decision decision = new Records.Decision();
        decision.key = context.getCurrentKey().getBytes(StandardCharsets.UTF_8);
        decision.decision = Records.decision(spec, event, values, result, now);
        if (result.score >= spec.reviewThreshold) {
            decision.alert = Records.alert(spec, event, result, now);
            alerts.inc();
        }
        out.collect(decision);
    }
}
