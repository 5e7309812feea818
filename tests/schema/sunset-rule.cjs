// graphql-inspector rule for the breaking-change gate: removing a field, argument, input
// field or enum value is allowed (non-breaking) only when the old schema deprecated it with a
// sunset date that has passed — "… (deprecated 2026-12-04, sunset 2027-06-30)" in its
// deprecation reason. Every other breaking change stays breaking. SCHEMA_GATE_TODAY
// (YYYY-MM-DD) overrides today's date for the gate's own tests.
const REMOVALS = new Set(['FIELD_REMOVED', 'INPUT_FIELD_REMOVED', 'ENUM_VALUE_REMOVED', 'FIELD_ARGUMENT_REMOVED']);

function deprecationOf(schema, path) {
  const [typeName, member, argument] = path.split('.');
  const type = schema && schema.getType(typeName);
  if (!type) return null;
  if (typeof type.getValues === 'function') {
    const value = type.getValues().find((v) => v.name === member);
    return value ? value.deprecationReason : null;
  }
  if (typeof type.getFields !== 'function') return null;
  const field = type.getFields()[member];
  if (!field) return null;
  if (argument) {
    const arg = (field.args || []).find((a) => a.name === argument);
    return arg ? arg.deprecationReason : null;
  }
  return field.deprecationReason;
}

function sunsetPassed(reason, today) {
  const match = /sunset (\d{4}-\d{2}-\d{2})/i.exec(reason || '');
  return Boolean(match) && match[1] < today;
}

module.exports = function sunsetRule({ changes, oldSchema }) {
  const today = process.env.SCHEMA_GATE_TODAY || new Date().toISOString().slice(0, 10);
  return changes.map((change) => {
    if (change.criticality.level !== 'BREAKING' || !REMOVALS.has(change.type) || !change.path) return change;
    const reason = deprecationOf(oldSchema, change.path);
    if (!sunsetPassed(reason, today)) return change;
    return {
      ...change,
      criticality: { level: 'NON_BREAKING', reason: `deprecated with a sunset that has passed: ${reason}` },
      message: `${change.message} (sunset passed)`,
    };
  });
};
