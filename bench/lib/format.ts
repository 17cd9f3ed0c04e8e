/** Figures as the benchmark prints them: fixed decimals, "n/a" for what could not be measured (NaN, ÷ 0). */
export const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : 'n/a');
export const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
export const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
