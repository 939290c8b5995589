// Public API of the schema domain: ClickHouse types, Tinybird schemas, names, engines and indexes
// (`.datasource` printing is in src/datafile). Pure functions only; every rejection is a
// SchemaError whose message is the user-facing Tinybird text.

export { SchemaError } from './errors.js';
export {
  parseType,
  printType,
  normalizeType,
  isKnownType,
  isNullable,
  unwrapNullable,
  baseTypeName,
} from './types.js';
export type {
  TypeNode,
  TypeArg,
  SimpleType,
  EnumType,
  NullableType,
  LowCardinalityType,
  ArrayType,
  MapType,
  TupleType,
  TupleElement,
  NestedType,
  VariantType,
  AggregateType,
  JsonType,
  JsonParam,
} from './types.js';
export {
  MAX_COLUMNS,
  parseSchema,
  parseSchemaWithIndexes,
  printSchema,
  printColumn,
  columnToJson,
  isJsonSchema,
  validateJsonPath,
} from './schema.js';
export type { ColumnJson } from './schema.js';
export {
  RESERVED_NAMES,
  isReservedName,
  isValidResourceName,
  isValidColumnName,
  normalizeName,
  validateResourceName,
  checkNameLength,
  MAX_NAME_LENGTH,
} from './names.js';
export {
  SUPPORTED_ENGINES,
  ALLOWED_INDEX_TYPES,
  isMergeTreeFamily,
  parseEngineParams,
  parseSettings,
  engineClause,
  engineToJson,
  engineToListJson,
  parseIndexes,
  formatIndex,
  indexClause,
} from './engine.js';
export { checkExpression, splitTopLevel } from './sql.js';
