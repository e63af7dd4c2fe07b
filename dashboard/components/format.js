// How the dashboard shows a KPI value, in French (the default) or English.

export const STATUS_COLOURS = {
	on_track: '#15803d',
	at_risk: '#d97706',
	off_track: '#b91c1c',
	none: '#9ca3af'
};

const STATUS_LABELS = {
	fr: { on_track: 'En bonne voie', at_risk: 'À risque', off_track: 'Hors trajectoire', none: 'Sans objectif' },
	en: { on_track: 'On track', at_risk: 'At risk', off_track: 'Off track', none: 'No target' }
};

const TRUST_LABELS = {
	fr: { trusted: 'Fiable', warning: 'Avertissement', incomplete: 'Incomplet', untrusted: 'Non fiable' },
	en: { trusted: 'Trusted', warning: 'Warning', incomplete: 'Incomplete', untrusted: 'Untrusted' }
};

// Ratios show as percentages; the other units keep their own scale.
const UNIT_SUFFIXES = {
	fr: { days: ' j', minutes: ' min', seconds: ' s', percent: ' %' },
	en: { days: ' d', minutes: ' min', seconds: ' s', percent: '%' }
};

const locale = (lang) => (lang === 'en' ? 'en-GB' : 'fr-FR');

export function formatNumber(value, decimals, lang) {
	return new Intl.NumberFormat(locale(lang), {
		minimumFractionDigits: decimals,
		maximumFractionDigits: decimals
	}).format(value);
}

// Dates and times as Evidence hands them over (Date objects at UTC, or ISO text), in UTC.
function formatInstant(value, lang, options) {
	if (value === null || value === undefined) return '–';
	const instant = value instanceof Date ? value : new Date(value);
	if (Number.isNaN(instant.getTime())) return String(value);
	return new Intl.DateTimeFormat(locale(lang), { ...options, timeZone: 'UTC' }).format(instant);
}

export const formatDate = (value, lang) => formatInstant(value, lang, { dateStyle: 'medium' });
export const formatDateTime = (value, lang) =>
	formatInstant(value, lang, { dateStyle: 'medium', timeStyle: 'short' });

export function formatPercent(share, lang) {
	if (share === null || share === undefined) return '–';
	return `${formatNumber(share * 100, 1, lang)}${lang === 'en' ? '%' : ' %'}`;
}

// Ratios that are multiples, not parts of a whole (the catalogue's unit says `ratio` for both):
// 7,37 reads better than 737 %.
const MULTIPLES = new Set(['ltv_to_cac', 'pages_per_session']);

export function formatKpi(value, unit, lang, kpiId, currency) {
	if (value === null || value === undefined) return '–';
	if (unit === 'currency' && currency) {
		return new Intl.NumberFormat(locale(lang), {
			style: 'currency',
			currency,
			maximumFractionDigits: 0
		}).format(value);
	}
	if (unit === 'ratio' && MULTIPLES.has(kpiId)) return formatNumber(value, 2, lang);
	if (unit === 'ratio') return formatPercent(value, lang);
	const decimals = unit === 'currency' || unit === 'count' ? 0 : 1;
	const suffixes = UNIT_SUFFIXES[lang === 'en' ? 'en' : 'fr'];
	return `${formatNumber(value, decimals, lang)}${suffixes[unit] ?? ''}`;
}

export const statusColour = (status) => STATUS_COLOURS[status ?? 'none'] ?? STATUS_COLOURS.none;
export const statusLabel = (status, lang) =>
	STATUS_LABELS[lang === 'en' ? 'en' : 'fr'][status ?? 'none'] ?? status;
export const trustLabel = (trust, lang) => TRUST_LABELS[lang === 'en' ? 'en' : 'fr'][trust] ?? trust;

const CATEGORY_LABELS = {
	fr: { sales: 'Ventes', marketing: 'Marketing', web: 'Web', service: 'Service client', finance: 'Finance' },
	en: { sales: 'Sales', marketing: 'Marketing', web: 'Web', service: 'Customer service', finance: 'Finance' }
};

export const categoryLabel = (category, lang) =>
	CATEGORY_LABELS[lang === 'en' ? 'en' : 'fr'][category] ?? category;
