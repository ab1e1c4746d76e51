package dataplatform.flink;

import java.io.Serializable;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Rules plus the champion model, as {@code hybrid_platform.rules.score_transaction} scores: the rules'
 * {@code 1 - prod(1 - weight)} over those that fire, the model's probability, the higher of the two,
 * reasons naming what fired, and a decision from the spec's thresholds.
 */
public final class Scorer implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final String APPROVE = "approve";
    public static final String REVIEW = "review";
    public static final String DECLINE = "decline";

    private final Spec spec;
    private final int[][] conditionRefs; // per rule, per condition: feature index, or -1 - field position
    // Per model: how each weighted input is read (compiled once per model the job meets).
    private transient Map<Model, int[]> kindsFor;
    private transient Map<Model, Object[]> argsFor;

    /** Score, reasons, decision and the version that scored. */
    public static final class Result {
        public double score;
        public final List<String> reasons = new ArrayList<>();
        public String decision;
        public String modelVersion;
    }

    public Scorer(Spec spec) {
        this.spec = spec;
        conditionRefs = new int[spec.rules.size()][];
        for (int r = 0; r < spec.rules.size(); r++) {
            List<Spec.Condition> conditions = spec.rules.get(r).conditions;
            conditionRefs[r] = new int[conditions.size()];
            for (int c = 0; c < conditions.size(); c++) {
                conditionRefs[r][c] = reference(conditions.get(c).input);
            }
        }
    }

    private int reference(String input) {
        int feature = spec.featureNames.indexOf(input);
        if (feature >= 0) {
            return feature;
        }
        for (int i = 0; i < spec.fields.size(); i++) {
            if (spec.fields.get(i).name.equals(input)) {
                return -1 - i;
            }
        }
        throw new IllegalArgumentException("rule input " + input + " is neither a feature nor a field");
    }

    /** A record field as a number: a decimal's value ({@code 1250} cents is 12.5), others as stored. */
    private double numeric(RecordSpec.Field field, Event event) {
        long raw = event.num[field.slot];
        return field.kind.equals("decimal") ? (double) raw / Math.pow(10, field.scale) : (double) raw;
    }

    private boolean holds(Spec.Condition condition, int ref, double[] features, Event event) {
        if (condition.op.equals("in")) {
            RecordSpec.Field field = spec.fields.get(-1 - ref);
            return condition.values.contains(event.text[field.slot]);
        }
        double x = ref >= 0 ? features[ref] : numeric(spec.fields.get(-1 - ref), event);
        switch (condition.op) {
            case ">=":
                return x >= condition.value;
            case ">":
                return x > condition.value;
            case "<=":
                return x <= condition.value;
            case "<":
                return x < condition.value;
            default:
                throw new IllegalStateException("unknown operator " + condition.op);
        }
    }

    public Result score(double[] features, Event event, Model model) {
        Result result = new Result();
        double allMiss = 1.0;
        for (int r = 0; r < spec.rules.size(); r++) {
            Spec.Rule rule = spec.rules.get(r);
            boolean fired = true;
            for (int c = 0; c < rule.conditions.size() && fired; c++) {
                fired = holds(rule.conditions.get(c), conditionRefs[r][c], features, event);
            }
            if (fired) {
                result.reasons.add(rule.name);
                allMiss *= 1.0 - rule.weight;
            }
        }
        double score = 1.0 - allMiss;
        result.modelVersion = spec.rulesOnlyVersion;
        if (model != null) {
            result.modelVersion = model.version;
            double modelScore = Model.sigmoid(margin(model, features, event));
            if (modelScore >= model.threshold || modelScore > score) {
                result.reasons.add(spec.modelReasonPrefix + model.version);
            }
            score = Math.max(score, modelScore);
        }
        result.score = score;
        result.decision = score >= spec.declineThreshold ? DECLINE : score >= spec.reviewThreshold ? REVIEW : APPROVE;
        return result;
    }

    // --- the model's inputs ---------------------------------------------------------------------------
    private static final int ZERO = 0;
    private static final int FEATURE = 1;
    private static final int LOG1P = 2;
    private static final int EQUALS = 3; // one_hot, indicator: field == value
    private static final int IN_SET = 4;

    /** {@code bias + sum(weight * input)} in the artifact's order (the order Python sums in). */
    double margin(Model model, double[] features, Event event) {
        if (kindsFor == null) {
            kindsFor = new IdentityHashMap<>();
            argsFor = new IdentityHashMap<>();
        }
        if (!kindsFor.containsKey(model)) {
            if (kindsFor.size() > 8) { // old models: keep the map small
                kindsFor.clear();
                argsFor.clear();
            }
            compile(model);
        }
        int[] kinds = kindsFor.get(model);
        Object[] args = argsFor.get(model);
        double z = model.bias;
        for (int i = 0; i < kinds.length; i++) {
            double x;
            switch (kinds[i]) {
                case FEATURE:
                    x = features[(Integer) args[i]];
                    break;
                case LOG1P: {
                    double amount = numeric((RecordSpec.Field) args[i], event);
                    x = amount > 0.0 ? Math.log1p(amount) : 0.0;
                    break;
                }
                case EQUALS: {
                    Object[] pair = (Object[]) args[i];
                    x = pair[1].equals(event.text[((RecordSpec.Field) pair[0]).slot]) ? 1.0 : 0.0;
                    break;
                }
                case IN_SET: {
                    Object[] pair = (Object[]) args[i];
                    x = ((Set<?>) pair[1]).contains(event.text[((RecordSpec.Field) pair[0]).slot]) ? 1.0 : 0.0;
                    break;
                }
                default:
                    x = 0.0; // a name no input produces counts as 0.0, as in Python
            }
            z += model.weights[i] * x;
        }
        return z;
    }

    private void compile(Model model) {
        int[] kinds = new int[model.names.length];
        Object[] args = new Object[model.names.length];
        for (int i = 0; i < model.names.length; i++) {
            String name = model.names[i];
            int feature = spec.featureNames.indexOf(name);
            if (feature >= 0) {
                kinds[i] = FEATURE;
                args[i] = feature;
                continue;
            }
            kinds[i] = ZERO;
            for (Spec.ModelInput input : spec.modelInputs) {
                RecordSpec.Field field = spec.field(input.field);
                if (input.kind.equals("log1p") && name.equals(input.name)) {
                    kinds[i] = LOG1P;
                    args[i] = field;
                } else if (input.kind.equals("in_set") && name.equals(input.name)) {
                    kinds[i] = IN_SET;
                    args[i] = new Object[] {field, new HashSet<>(input.values)};
                } else if (input.kind.equals("one_hot") && name.startsWith(input.field + "=")
                        && input.values.contains(name.substring(input.field.length() + 1))) {
                    kinds[i] = EQUALS;
                    args[i] = new Object[] {field, name.substring(input.field.length() + 1)};
                } else if (input.kind.equals("indicator") && name.startsWith(input.field + "=")) {
                    kinds[i] = EQUALS;
                    args[i] = new Object[] {field, name.substring(input.field.length() + 1)};
                }
                if (kinds[i] != ZERO) {
                    break;
                }
            }
        }
        kindsFor.put(model, kinds);
        argsFor.put(model, args);
    }

    /** {@code round(score, 6)} as Python rounds: half-even on the exact binary value. */
    public static double round6(double score) {
        return new BigDecimal(score).setScale(6, RoundingMode.HALF_EVEN).doubleValue();
    }
}
