// Renders the app's Dashboard Studio definition with Splunk's own renderer (@splunk/dashboard-core
// and the Enterprise view-only preset). The one substitution: the `ds.search` data source type is
// LocalRunnerSearch, which posts each search (tokens already resolved by the framework) to the test's
// HTTP server; that server answers with the local runner's results over the bundled sample.
import React from 'react';
import { createRoot } from 'react-dom/client';
import DashboardCore from '@splunk/dashboard-core';
import { DashboardContextProvider } from '@splunk/dashboard-context';
import EnterpriseViewOnlyPreset from '@splunk/dashboard-presets/EnterpriseViewOnlyPreset';
import DataSource from '@splunk/datasources/DataSource';
import { DataSet } from '@splunk/datasource-utils';
import SplunkThemeProvider from '@splunk/themes/SplunkThemeProvider';

// What the test reads back: every search the dashboard ran, and the tokens as they change.
window.__harness = { requests: [], tokens: null, errors: [] };

class LocalRunnerSearch extends DataSource {
    request() {
        return (observer) => {
            const body = {
                query: this.options.query,
                queryParameters: this.options.queryParameters || {},
            };
            window.__harness.requests.push(body);
            let cancelled = false;
            fetch('/search', { method: 'POST', body: JSON.stringify(body) })
                .then((response) => response.json().then((json) => ({ ok: response.ok, json })))
                .then(({ ok, json }) => {
                    if (cancelled) return;
                    if (!ok) {
                        observer.error({ level: 'error', message: json.error });
                        return;
                    }
                    observer.next({
                        data: DataSet.fromJSONCols(json.fields, json.columns),
                        meta: { status: 'done', percentComplete: 100, totalCount: json.columns[0] ? json.columns[0].length : 0 },
                    });
                    observer.complete();
                })
                .catch((error) => {
                    if (!cancelled) observer.error({ level: 'error', message: String(error) });
                });
            return () => {
                cancelled = true;
            };
        };
    }
}

const preset = {
    ...EnterpriseViewOnlyPreset,
    dataSources: { ...EnterpriseViewOnlyPreset.dataSources, 'ds.search': LocalRunnerSearch },
};

fetch('/definition.json')
    .then((response) => response.json())
    .then((definition) => {
        const theme = definition.theme || 'dark';
        document.body.style.background = theme === 'dark' ? '#111215' : '#f2f4f5';
        createRoot(document.getElementById('root')).render(
            <SplunkThemeProvider family="enterprise" colorScheme={theme} density="comfortable">
                <DashboardContextProvider
                    preset={preset}
                    initialDefinition={definition.definition}
                    onTokenBindingChange={(tokens) => {
                        window.__harness.tokens = tokens;
                    }}
                >
                    <DashboardCore width="100%" height="100%" />
                </DashboardContextProvider>
            </SplunkThemeProvider>
        );
    });
