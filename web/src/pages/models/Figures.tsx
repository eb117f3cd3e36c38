// A row of headline figures above a model's charts.
import { Card, Col, Row, Statistic } from "antd";

export function Figures({ items, testId }: { items: { label: string; value: string }[]; testId?: string }) {
  return (
    <Row gutter={[16, 16]} data-testid={testId}>
      {items.map((item) => (
        <Col key={item.label} xs={12} md={6}>
          <Card size="small">
            <Statistic title={item.label} value={item.value} />
          </Card>
        </Col>
      ))}
    </Row>
  );
}
