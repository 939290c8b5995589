/** AST of the Python expression subset, shaped like Python's `ast` module (same field order). */

export type Const = string | bigint | number | boolean | null;

export type BinOpName = 'Add' | 'Sub' | 'Mult' | 'Div' | 'FloorDiv' | 'Mod' | 'Pow' | 'LShift' | 'RShift' | 'BitOr' | 'BitXor' | 'BitAnd' | 'MatMult';
export type UnaryOpName = 'UAdd' | 'USub' | 'Not' | 'Invert';
export type CmpOpName = 'Eq' | 'NotEq' | 'Lt' | 'LtE' | 'Gt' | 'GtE' | 'Is' | 'IsNot' | 'In' | 'NotIn';
export type Ctx = 'Load' | 'Store';

export interface Keyword {
  k: 'keyword';
  arg: string | null;
  value: Node;
}
export interface Comprehension {
  k: 'comprehension';
  target: Node;
  iter: Node;
  ifs: Node[];
}

export type Node =
  | { k: 'Name'; id: string; ctx: Ctx }
  | { k: 'Constant'; value: Const; bytes?: boolean }
  | { k: 'Attribute'; value: Node; attr: string; ctx: Ctx }
  | { k: 'Call'; func: Node; args: Node[]; keywords: Keyword[] }
  | { k: 'BinOp'; left: Node; op: BinOpName; right: Node }
  | { k: 'UnaryOp'; op: UnaryOpName; operand: Node }
  | { k: 'BoolOp'; op: 'And' | 'Or'; values: Node[] }
  | { k: 'Compare'; left: Node; ops: CmpOpName[]; comparators: Node[] }
  | { k: 'IfExp'; test: Node; body: Node; orelse: Node }
  | { k: 'Subscript'; value: Node; slice: Node; ctx: Ctx }
  | { k: 'Slice'; lower: Node | null; upper: Node | null; step: Node | null }
  | { k: 'List'; elts: Node[]; ctx: Ctx }
  | { k: 'Tuple'; elts: Node[]; ctx: Ctx }
  | { k: 'Set'; elts: Node[] }
  | { k: 'Dict'; keys: (Node | null)[]; values: Node[] }
  | { k: 'JoinedStr'; values: Node[] }
  | { k: 'FormattedValue'; value: Node; conversion: number; format_spec: Node | null }
  | { k: 'ListComp'; elt: Node; generators: Comprehension[] }
  | { k: 'SetComp'; elt: Node; generators: Comprehension[] }
  | { k: 'GeneratorExp'; elt: Node; generators: Comprehension[] }
  | { k: 'DictComp'; key: Node; value: Node; generators: Comprehension[] }
  | { k: 'Starred'; value: Node; ctx: Ctx };

/** A control statement ({% ... %}) once parsed. */
export type Stmt =
  | { k: 'If'; test: Node }
  | { k: 'While'; test: Node }
  | { k: 'For'; target: Node; iter: Node }
  | { k: 'Except'; type: Node | null; name: string | null }
  | { k: 'Assign'; targets: Node[]; value: Node }
  | { k: 'AugAssign'; target: Node; op: BinOpName; value: Node }
  | { k: 'Expr'; value: Node };

export type AnyNode = Node | Keyword | Comprehension;

/** Children in the order Python's ast.iter_child_nodes yields them (operator/ctx leaves omitted). */
export function childNodes(n: AnyNode): AnyNode[] {
  switch (n.k) {
    case 'Name':
    case 'Constant':
      return [];
    case 'Attribute':
      return [n.value];
    case 'Call':
      return [n.func, ...n.args, ...n.keywords];
    case 'keyword':
      return [n.value];
    case 'comprehension':
      return [n.target, n.iter, ...n.ifs];
    case 'BinOp':
      return [n.left, n.right];
    case 'UnaryOp':
      return [n.operand];
    case 'BoolOp':
      return n.values;
    case 'Compare':
      return [n.left, ...n.comparators];
    case 'IfExp':
      return [n.test, n.body, n.orelse];
    case 'Subscript':
      return [n.value, n.slice];
    case 'Slice':
      return [n.lower, n.upper, n.step].filter((x): x is Node => x !== null);
    case 'List':
    case 'Tuple':
    case 'Set':
      return n.elts;
    case 'Dict':
      return [...n.keys.filter((x): x is Node => x !== null), ...n.values];
    case 'JoinedStr':
      return n.values;
    case 'FormattedValue':
      return n.format_spec ? [n.value, n.format_spec] : [n.value];
    case 'ListComp':
    case 'SetComp':
    case 'GeneratorExp':
      return [n.elt, ...n.generators];
    case 'DictComp':
      return [n.key, n.value, ...n.generators];
    case 'Starred':
      return [n.value];
  }
}

/** The expressions of a control statement, in the order of its AST fields (as ast.iter_child_nodes). */
export function stmtChildNodes(s: Stmt): Node[] {
  switch (s.k) {
    case 'If':
    case 'While':
      return [s.test];
    case 'For':
      return [s.target, s.iter];
    case 'Except':
      return s.type ? [s.type] : [];
    case 'Assign':
      return [...s.targets, s.value];
    case 'AugAssign':
      return [s.target, s.value];
    case 'Expr':
      return [s.value];
  }
}
